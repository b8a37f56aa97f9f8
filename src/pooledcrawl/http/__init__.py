"""HTTP models: requests, responses, and URL handling."""

from pooledcrawl.http.request import Request
from pooledcrawl.http.response import Response

__all__ = ["Request", "Response"]
