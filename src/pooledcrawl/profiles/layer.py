"""A profile's entries as a settings layer: section entries (``[timeout] total``) and
``[settings]`` entries by their Settings names, checked, and the connector limit derived
from the ``[sizing]`` figures (Little's Law)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pooledcrawl.errors import UsageError
from pooledcrawl.profiles.reading import Tree
from pooledcrawl.profiles.schema import SECTIONS, settings_type, type_error
from pooledcrawl.proxy.blocks import compile_patterns
from pooledcrawl.settings import Settings, canonical, coerce
from pooledcrawl.sizing import HEADROOM, little_law, with_headroom

__all__ = ["check_sizing", "to_settings"]


def to_settings(tree: Tree, origins: Mapping[str, Path]) -> tuple[dict[str, Any], dict[str, str]]:
    """The profile's entries by Settings name (nested ones dotted: ``postgres.pool_size``),
    checked, with the derived connector limits; and how each derived value came about."""
    layer: dict[str, Any] = {}
    dotted_of: dict[str, str] = {}
    for section, table in SECTIONS.items():
        for key, value in tree.get(section, {}).items():
            if key in table:
                layer[table[key]] = value
                dotted_of[table[key]] = f"{section}.{key}"
    for key, value in tree.get("settings", {}).items():
        name = canonical(key)  # an old flat name (pg_pool_size) is its nested field
        if name in layer:
            origin = origins.get(f"settings.{key}", "profile")
            raise UsageError(
                f"{origin}: settings.{key}: already set as {dotted_of[name]}; set it once"
            )
        layer[name] = value
        dotted_of[name] = f"settings.{key}"

    def where(key: str) -> str:
        dotted = dotted_of[key]
        return f"{origins.get(dotted, 'profile')}: {dotted}"

    for key, value in layer.items():
        try:
            layer[key] = coerce(key, value, source=where(key))
        except UsageError as exc:
            raise UsageError(str(exc).replace(f"setting {key}: ", "")) from None
        # ``${}`` values are type-checked only now, after expansion
        problem = type_error(settings_type(key), layer[key])
        if problem is not None:
            raise UsageError(f"{where(key)}: {problem}")

    start, top = layer.get("domain_concurrency"), layer.get("domain_concurrency_max")
    if start is not None and top is not None and start > top:
        raise UsageError(
            f"{where('domain_concurrency')} ({start}) is above "
            f"{dotted_of['domain_concurrency_max']} ({top}): an impossible range"
        )

    if "ban_patterns" in layer:  # a bad regex is the profile's error, not the crawl's
        compile_patterns(layer["ban_patterns"], where=where("ban_patterns"))
    derived = _derive_limits(tree.get("sizing", {}), layer)
    try:
        Settings().merged(layer, source="profile")
    except UsageError as exc:
        message = str(exc).removeprefix("profile: ")
        for key in sorted(dotted_of, key=len, reverse=True):
            if f"setting {key}" in message:
                raise UsageError(
                    f"{where(key)}: {message.replace(f'setting {key}: ', '')}"
                ) from None
        path = next(iter(origins.values()), "profile")
        raise UsageError(f"{path}: {message}") from None
    return layer, derived


def check_sizing(tree: Tree, origins: Mapping[str, Path]) -> None:
    """``[sizing]`` figures: positive numbers (checked after ``${}`` expansion)."""
    sizing = tree.get("sizing", {})
    for key, value in list(sizing.items()):
        where = f"{origins.get(f'sizing.{key}', 'profile')}: sizing.{key}"
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None:
            raise UsageError(f"{where}: expected a number, got {value!r}")
        if number <= 0:
            raise UsageError(f"{where}: must be > 0, got {value!r}")
        sizing[key] = number


def _derive_limits(sizing: Mapping[str, Any], layer: dict[str, Any]) -> dict[str, str]:
    """``limit_per_host`` unless set: connections in use = arrival rate * time each
    is held (Little's Law), plus 30% headroom."""
    derived: dict[str, str] = {}
    latency_ms, rps = sizing.get("latency_ms"), sizing.get("target_rps")
    if latency_ms is None or rps is None:
        return derived
    latency = float(latency_ms) / 1000
    need = little_law(float(rps), latency)
    if layer.get("connector_limit_per_host") is None:
        per_host = with_headroom(need, HEADROOM)
        layer["connector_limit_per_host"] = per_host
        derived["connector_limit_per_host"] = (
            f"Little's Law: {rps:g} rps x {latency:g} s = {need} in flight, +30% = {per_host}"
        )
    return derived
