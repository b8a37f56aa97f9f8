"""Finding profiles: the package's own, then ``--profiles-dir`` (or
``$PCRAWL_PROFILES_DIR``); a user profile with the same name wins."""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path

from pooledcrawl.errors import UsageError

__all__ = [
    "ENV_DIR",
    "ProfileSource",
    "find_profiles",
    "package_profiles_dir",
    "unknown_profile",
    "user_profiles_dir",
]

ENV_DIR = "PCRAWL_PROFILES_DIR"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclasses.dataclass(frozen=True, slots=True)
class ProfileSource:
    name: str
    path: Path
    builtin: bool

    @property
    def origin(self) -> str:
        return "package" if self.builtin else "user"


def package_profiles_dir() -> Path | None:
    """The profiles shipped in the wheel, or the repository's ``profiles/`` in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "data", here.parents[2] / "profiles"):
        if candidate.is_dir():
            return candidate
    return None


def user_profiles_dir(profiles_dir: str | Path | None = None) -> Path | None:
    """``--profiles-dir`` if given, else ``$PCRAWL_PROFILES_DIR``; it must exist."""
    if profiles_dir is not None:
        where, raw = "--profiles-dir", str(profiles_dir)
    else:
        raw = os.environ.get(ENV_DIR, "")
        where = ENV_DIR
        if not raw:
            return None
    path = Path(raw).expanduser()
    if not path.is_dir():
        raise UsageError(f"{where}: profiles directory not found: {path}")
    return path


def _scan(directory: Path, builtin: bool) -> dict[str, ProfileSource]:
    found = {}
    for path in sorted(directory.glob("*.toml")):
        if _NAME.match(path.stem):
            found[path.stem] = ProfileSource(path.stem, path, builtin)
    return found


def find_profiles(profiles_dir: str | Path | None = None) -> dict[str, ProfileSource]:
    """Every profile by name; a user profile shadows a package one of the same name."""
    found: dict[str, ProfileSource] = {}
    package = package_profiles_dir()
    if package is not None:
        found.update(_scan(package, builtin=True))
    user = user_profiles_dir(profiles_dir)
    if user is not None:
        found.update(_scan(user, builtin=False))
    return dict(sorted(found.items()))


def unknown_profile(name: str, sources: Mapping[str, ProfileSource]) -> str:
    """The message for a profile name that is not found, with the closest known one."""
    close = difflib.get_close_matches(name, list(sources), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    known = ", ".join(sources) or "none"
    return f"unknown profile {name!r}{hint}; known profiles: {known}"
