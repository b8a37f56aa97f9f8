"""Reading a profile file and its ``extends`` chain, and checking what it contains.

Each file is checked as written (before ``${}`` expansion): unknown keys (with the
closest known one) and values of the wrong type are a UsageError naming the file and
key. Nested settings in ``[settings]`` (``[settings.postgres]``) become dotted keys
(``settings.postgres.pool_size``) so that a child profile overrides them one by one.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pooledcrawl.errors import UsageError
from pooledcrawl.profiles.finding import ProfileSource, package_profiles_dir, unknown_profile
from pooledcrawl.profiles.schema import (
    META_KEYS,
    PROXY_LIST_KEYS,
    SECTIONS,
    all_dotted_keys,
    settings_type,
    type_error,
)
from pooledcrawl.proxy.endpoint import has_env_ref
from pooledcrawl.settings import GROUPS, canonical, is_setting

__all__ = ["Tree", "load_chain"]

Tree = dict[str, Any]


def load_chain(
    source: ProfileSource, sources: Mapping[str, ProfileSource], seen: tuple[Path, ...] = ()
) -> tuple[Tree, dict[str, Path], tuple[Path, ...]]:
    """The file's entries merged over its ``extends`` chain, which file set each key
    (dotted), and the files of the chain, the base first."""
    path = source.path
    data = _read(path)
    _check_structure(data, path)
    if "settings" in data:
        data["settings"] = _flat_settings(data["settings"])
    own_origins = {key: path for key in _dotted(data)}
    parent_name = data.get("extends")
    if parent_name is None:
        return data, own_origins, (path,)
    parent = _parent_source(source, parent_name, sources)
    if parent.path in seen or parent.path == path:
        names = " -> ".join(p.stem for p in (*seen, path, parent.path))
        raise UsageError(f"{path}: extends: cycle {names}")
    base, origins, chain = load_chain(parent, sources, (*seen, path))
    merged = _merge(base, data, origins)
    origins.update(own_origins)
    return merged, origins, (*chain, path)


def _read(path: Path) -> Tree:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _parent_source(
    source: ProfileSource, parent_name: str, sources: Mapping[str, ProfileSource]
) -> ProfileSource:
    if parent_name == source.name:
        # A user profile that extends its own name builds on the package profile it shadows.
        package = package_profiles_dir()
        if (
            not source.builtin
            and package is not None
            and (package / f"{parent_name}.toml").is_file()
        ):
            return ProfileSource(parent_name, package / f"{parent_name}.toml", builtin=True)
        raise UsageError(f"{source.path}: extends: a profile cannot extend itself")
    parent = sources.get(parent_name)
    if parent is None:
        raise UsageError(f"{source.path}: extends: {unknown_profile(parent_name, sources)}")
    return parent


def _flat_settings(table: Tree) -> Tree:
    """``[settings.postgres] pool_size = 4`` as ``postgres.pool_size = 4``."""
    flat: Tree = {}
    for key, value in table.items():
        if key in GROUPS:
            flat.update((f"{key}.{sub}", item) for sub, item in value.items())
        else:
            flat[key] = value
    return flat


def _dotted(data: Tree) -> list[str]:
    keys = []
    for key, value in data.items():
        if isinstance(value, dict):
            keys += [f"{key}.{sub}" for sub in value]
        else:
            keys.append(key)
    return keys


def _merge(base: Tree, child: Tree, origins: dict[str, Path]) -> Tree:
    merged: Tree = {}
    for key, value in base.items():
        merged[key] = dict(value) if isinstance(value, dict) and key != "extends" else value
    merged.pop("extends", None)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            table = merged[key]
            if key == "proxy" and any(k in value for k in PROXY_LIST_KEYS):
                for k in PROXY_LIST_KEYS:  # a child's proxy list replaces the parent's
                    table.pop(k, None)
                    origins.pop(f"proxy.{k}", None)
            if key == "settings":  # one setting under another name (pg_x, postgres.x)
                names = {canonical(k) for k in value}
                for k in [k for k in table if canonical(k) in names]:
                    del table[k]
                    origins.pop(f"settings.{k}", None)
            table.update(value)
        else:
            merged[key] = value
    return merged


def unknown_key(path: Path, dotted: str) -> UsageError:
    close = difflib.get_close_matches(dotted, all_dotted_keys(), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return UsageError(f"{path}: unknown key {dotted!r}{hint}")


def _check_structure(data: Tree, path: Path) -> None:
    """Unknown keys and wrong types, on the file as written (before ``${}`` expansion)."""
    tables = (*SECTIONS, "sizing", "settings", "session")
    for key, value in data.items():
        if key in tables:
            if not isinstance(value, dict):
                raise UsageError(f"{path}: {key}: expected a [{key}] table, got {value!r}")
            for sub, item in value.items():
                if key == "settings" and sub in GROUPS:
                    _check_group(path, sub, item)
                else:
                    _check_entry(path, f"{key}.{sub}", item)
        elif key in META_KEYS:
            _check_entry(path, key, value)
        else:
            raise unknown_key(path, key)


def _check_group(path: Path, group: str, table: Any) -> None:
    if not isinstance(table, dict):
        raise UsageError(
            f"{path}: settings.{group}: expected a [settings.{group}] table, got {table!r}"
        )
    for sub, item in table.items():
        _check_entry(path, f"settings.{group}.{sub}", item)


def _check_entry(path: Path, dotted: str, value: Any) -> None:
    section, _, key = dotted.partition(".")
    if dotted in META_KEYS:
        tp = META_KEYS[dotted][0]
    elif section == "settings":
        if not is_setting(key):
            raise unknown_key(path, dotted)
        tp = settings_type(key)
    elif section in SECTIONS and key in SECTIONS[section]:
        tp = settings_type(SECTIONS[section][key])
    else:
        raise unknown_key(path, dotted)
    if isinstance(value, str) and has_env_ref(value) and tp is not str:
        return  # checked after expansion
    problem = type_error(tp, value)
    if problem is not None:
        if section == "proxy" and key not in SECTIONS["proxy"]:
            problem = problem.split(", got", 1)[0]  # never echo what may be a credential
        raise UsageError(f"{path}: {dotted}: {problem}")
