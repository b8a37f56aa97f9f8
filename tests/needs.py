"""Optional parts a test needs: it skips without them, except under
``PCRAWL_REQUIRE_SERVICES`` (CI), where a missing part fails the test."""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest

__all__ = ["TRANSPORTS", "require_tool", "require_transport"]

#: every transport, for tests that hold for all of them
TRANSPORTS = ("aiohttp", "httpx", "curl")


def _missing(message: str) -> None:
    if os.environ.get("PCRAWL_REQUIRE_SERVICES"):
        pytest.fail(message + " and PCRAWL_REQUIRE_SERVICES is set")
    pytest.skip(message)


def require_transport(name: str) -> None:
    """curl needs the ``curl`` extra (curl_cffi); the others are always installed."""
    if name == "curl" and importlib.util.find_spec("curl_cffi") is None:
        _missing("curl_cffi is not installed (pip install 'pooledcrawl[curl]')")


def require_tool(name: str) -> str:
    """The path of the program ``name`` (a Debian package CI installs)."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    path = shutil.which(name, path=search)
    if path is None:
        _missing(f"{name} is not installed")
        raise AssertionError  # unreachable: skip and fail raise
    return path
