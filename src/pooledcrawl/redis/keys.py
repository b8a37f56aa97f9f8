"""Redis key names of a distributed job: everything lives under ``pcrawl:{job}:``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pooledcrawl.errors import UsageError

__all__ = ["JobKeys"]


#: a job name is a key prefix: no ":" (job "a" would own job "a:b"'s keys) and no
#: glob characters (purge matches the prefix with a pattern)
_JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True, slots=True)
class JobKeys:
    job: str

    def __post_init__(self) -> None:
        if _JOB_NAME.fullmatch(self.job) is None:
            raise UsageError(
                f"job name {self.job!r}: use 1-100 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )

    @property
    def prefix(self) -> str:
        return f"pcrawl:{self.job}:"

    def stream(self, priority: int) -> str:
        """One stream per priority level; consumers read the highest level first."""
        return f"{self.prefix}q:{priority}"

    @property
    def stream_prefix(self) -> str:
        return f"{self.prefix}q:"

    @property
    def priorities(self) -> str:
        return f"{self.prefix}priorities"

    @property
    def seen(self) -> str:
        return f"{self.prefix}seen"

    @property
    def delayed(self) -> str:
        return f"{self.prefix}delayed"

    @property
    def meta(self) -> str:
        """Hash: spider name, seeded flag, done/failed counters."""
        return f"{self.prefix}meta"

    @property
    def workers(self) -> str:
        """Sorted set: worker id -> last heartbeat (epoch seconds)."""
        return f"{self.prefix}workers"

    def worker_stats(self, worker: str) -> str:
        return f"{self.prefix}stats:{worker}"

    @property
    def domains(self) -> str:
        """Hash per domain state prefix: ``{prefix}domain:{host}``."""
        return f"{self.prefix}domain:"

    def domain(self, host: str) -> str:
        return f"{self.prefix}domain:{host}"

    @property
    def pattern(self) -> str:
        return f"{self.prefix}*"


GROUP = "workers"
