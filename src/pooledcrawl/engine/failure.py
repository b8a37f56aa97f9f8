"""What an errback receives."""

from __future__ import annotations

from dataclasses import dataclass

from pooledcrawl.http.request import Request
from pooledcrawl.http.response import Response

__all__ = ["Failure"]


@dataclass(slots=True)
class Failure:
    """What an errback receives when a request is given up on."""

    request: Request
    exception: BaseException | None
    response: Response | None
    attempts: int

    @property
    def reason(self) -> str:
        if self.response is not None:
            return f"HTTP {self.response.status}"
        return str(self.exception)
