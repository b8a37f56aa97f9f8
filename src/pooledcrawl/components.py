"""Building user components (middlewares, extensions) named in settings.

An entry is a class, an instance, a dotted path (``pkg.mod.Class`` or ``pkg.mod:Class``)
or a built-in's short name. A class is built with ``from_crawler(crawler)`` when it has
one (Scrapy's convention), else with no arguments. Every failure is one UsageError line.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any

from pooledcrawl.errors import UsageError

__all__ = ["build_components", "custom_component", "load_object", "ordered_entries"]

#: where a list entry sits among built-ins that have explicit orders (Scrapy's custom
#: middlewares conventionally use 543: after the request-shaping built-ins, before
#: those nearest the network)
DEFAULT_ORDER = 500


def load_object(path: str, what: str) -> Any:
    """Import ``pkg.mod:Name`` or ``pkg.mod.Name``."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise UsageError(f"{what} {path!r}: expected pkg.module.Name or pkg.module:Name")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"{what} {path!r}: cannot import {module_name!r}: {exc}") from None
    except Exception as exc:
        raise UsageError(f"{what} {path!r}: error importing {module_name!r}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UsageError(f"{what} {path!r}: {module_name!r} has no {attr!r}") from None


def _key(entry: Any) -> Any:
    """What identifies an entry across layers: the name, the class, or the object."""
    if isinstance(entry, str):
        return entry.rpartition(":")[2].rpartition(".")[2] if "." in entry else entry
    if isinstance(entry, type):
        return entry.__name__
    return id(entry)


def ordered_entries(
    base: Mapping[str, int], configured: list[Any] | dict[Any, int | None]
) -> list[Any]:
    """Built-ins (``base``: name -> order) merged with the configured entries.

    A list keeps its order and sits at :data:`DEFAULT_ORDER`; a mapping gives each entry
    its order, and ``None`` disables it (a built-in too, by short name, dotted path or
    class). Ties keep the order entries were given in, built-ins first.
    """
    orders: dict[Any, tuple[int, Any]] = {_key(name): (order, name) for name, order in base.items()}
    if isinstance(configured, dict):
        items: Iterable[tuple[Any, int | None]] = configured.items()
    else:
        items = ((entry, DEFAULT_ORDER) for entry in configured)
    for entry, order in items:
        key = _key(entry)
        if order is None:
            orders.pop(key, None)
        else:
            orders.pop(key, None)  # re-inserted: a re-ordered built-in moves after ties
            orders[key] = (order, entry)
    ranked = sorted(enumerate(orders.values()), key=lambda pair: (pair[1][0], pair[0]))
    return [entry for _, (_, entry) in ranked]


def build_components(
    entries: Iterable[Any], crawler: Any, what: str, builtins: Mapping[str, Any]
) -> list[Any]:
    """Objects for ``entries`` (see the module docstring); a class listed twice is built once."""
    built: list[Any] = []
    seen: set[type] = set()
    for entry in entries:
        obj = entry
        if isinstance(entry, str):
            obj = builtins.get(entry) or load_object(entry, what)
        if isinstance(obj, type):
            if obj in seen:
                continue
            seen.add(obj)
            factory = getattr(obj, "from_crawler", None)
            try:
                obj = factory(crawler) if callable(factory) else obj()
            except UsageError:
                raise
            except Exception as exc:
                raise UsageError(
                    f"{what} {obj.__name__}: cannot be built: {type(exc).__name__}: {exc}"
                ) from None
        if obj is not None:  # from_crawler may decline (e.g. a feature the settings turn off)
            built.append(obj)
    return built


#: methods the object a ``*_class`` setting builds must have
REQUIRED = {
    "transport_class": ("fetch", "close"),
    "frontier_class": ("push", "pop", "push_later", "ack", "exhausted"),
    "policy_class": ("limit", "ready_at", "on_send", "on_response", "on_error"),
}


def custom_component(entry: Any, settings: Any, what: str, *args: Any) -> Any:
    """An instance of the class a ``*_class`` setting names: ``from_settings(settings)``
    when it has one, else ``cls(*args)``; None when the setting is unset."""
    if entry is None:
        return None
    cls = load_object(entry, what) if isinstance(entry, str) else entry
    name = getattr(cls, "__name__", repr(cls))
    factory = getattr(cls, "from_settings", None)
    try:
        obj = factory(settings) if callable(factory) else cls(*args)
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError(f"{what} {name}: cannot be built: {type(exc).__name__}: {exc}") from None
    missing = [m for m in REQUIRED.get(what, ()) if not callable(getattr(obj, m, None))]
    if missing:
        raise UsageError(f"{what} {name}: has no {', '.join(m + '()' for m in missing)}")
    return obj
