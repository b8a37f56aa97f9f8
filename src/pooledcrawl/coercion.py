"""Parsing and checking setting values: Python values from ``custom_settings`` and
profiles are checked, strings from ``-s KEY=VALUE`` are parsed (numbers, booleans,
comma-separated or JSON lists, JSON mappings)."""

from __future__ import annotations

import re
import types
from typing import Any, Union, get_args, get_origin

import orjson

__all__ = ["coerce_components", "coerce_schemes", "coerce_to", "parse_list"]


def coerce_to(tp: Any, value: Any) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        return coerce_to(args[0], value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise TypeError(f"expected an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise TypeError(f"expected a number, got {value!r}")
        number = float(value)
        if number != number:  # NaN slips past every "> 0" check
            raise ValueError(f"expected a number, got {value!r}")
        return number
    if tp is str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {value!r}")
        return value
    if origin is list:
        (item_type,) = get_args(tp)
        if isinstance(value, str):
            value = parse_list(value)
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list, got {value!r}")
        return [coerce_to(item_type, v) for v in value]
    if origin is dict:
        if isinstance(value, str):
            value = orjson.loads(value)
        if not isinstance(value, dict):
            raise TypeError(f"expected a mapping, got {value!r}")
        return {str(k): str(v) for k, v in value.items()}
    raise TypeError(f"unsupported setting type {tp!r}")  # pragma: no cover - a bug in Settings


def coerce_components(value: Any) -> list[Any] | dict[Any, int | None]:
    """A list of components, or a mapping of them to orders (None disables one).
    Entries are dotted paths, classes or instances; from ``-s``, a comma-separated
    list or JSON (``{"pkg.mod.Class": 100, "UserAgent": null}``)."""
    if isinstance(value, str):
        text = value.strip()
        value = orjson.loads(text) if text.startswith("{") else parse_list(text)
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, dict):
        out: dict[Any, int | None] = {}
        for entry, order in value.items():
            if order is not None and (isinstance(order, bool) or not isinstance(order, int)):
                raise TypeError(f"order of {entry!r} must be an integer or None, got {order!r}")
            out[entry] = order
        return out
    raise TypeError(f"expected a list or a mapping, got {value!r}")


def coerce_schemes(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = orjson.loads(value)
    if not isinstance(value, dict):
        raise TypeError(f"expected a mapping of URL schemes to sink classes, got {value!r}")
    out: dict[str, Any] = {}
    for scheme, sink in value.items():
        if not isinstance(scheme, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
            raise ValueError(f"not a URL scheme: {scheme!r}")
        if not isinstance(sink, str | type):
            raise TypeError(f"sink for {scheme!r} must be a class or a dotted path, got {sink!r}")
        out[scheme.lower()] = sink
    return out


def parse_list(text: str) -> list[Any]:
    text = text.strip()
    if text.startswith("["):
        parsed = orjson.loads(text)
        if not isinstance(parsed, list):
            raise ValueError("expected a list")
        return parsed
    return [part.strip() for part in text.split(",") if part.strip()]
