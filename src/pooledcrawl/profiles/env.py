"""``${VAR}`` in a profile: expanded from the environment, and the variables that hold
proxy credentials noted (their names only, never their values)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pooledcrawl.errors import UsageError
from pooledcrawl.profiles.reading import Tree
from pooledcrawl.profiles.schema import CREDENTIAL_KEYS
from pooledcrawl.proxy.endpoint import expand_env, expand_proxy_url, has_env_ref

__all__ = ["expand_tree"]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_tree(
    tree: Tree, origins: Mapping[str, Path], env: Mapping[str, str], strict: bool
) -> list[str]:
    """Expand ``${VAR}`` in every string, in place; returns the credential variables.

    ``strict=False`` takes an unset variable as empty (listing profiles without their
    credentials at hand); else it is a UsageError naming the file and key."""
    credential_vars: list[str] = []

    def expand(dotted: str, value: Any) -> Any:
        if isinstance(value, str):
            if not has_env_ref(value):
                return value
            if dotted in ("proxy.url", "proxy.urls"):
                expanded, missing = expand_proxy_url(value, env)
            else:
                expanded, missing = expand_env(value, env)
            if missing and strict:
                where = origins.get(dotted, "profile")
                raise UsageError(f"{where}: {dotted}: environment variable {missing[0]} is not set")
            if dotted in CREDENTIAL_KEYS or dotted.startswith(
                ("proxy.url", "proxy.file", "session.template")
            ):
                credential_vars.extend(m.group(1) for m in _ENV_REF.finditer(value))
            return expanded
        if isinstance(value, list):
            return [expand(dotted, item) for item in value]
        if isinstance(value, dict):
            return {k: expand(dotted, v) for k, v in value.items()}
        return value

    for key, value in list(tree.items()):
        if isinstance(value, dict):
            tree[key] = {sub: expand(f"{key}.{sub}", item) for sub, item in value.items()}
        else:
            tree[key] = expand(key, value)
    return sorted(set(credential_vars))
