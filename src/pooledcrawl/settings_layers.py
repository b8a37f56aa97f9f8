"""How layers of settings are read: names (dotted, flat, or an old flat name) to the
field they set, values checked against its type, and layers merged over the defaults.

Apart from ``Settings`` so that the class holds only what a setting is (its field, its
default, its check), and this the lookup a profile, ``custom_settings`` or ``-s`` goes
through. ``pooledcrawl.settings`` binds one :class:`Schema` to ``Settings`` and exports
its methods (``canonical``, ``flatten``, ``coerce``...)."""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any, Generic, Protocol, TypeVar, get_type_hints

import orjson

from pooledcrawl.coercion import coerce_components, coerce_schemes, coerce_to
from pooledcrawl.errors import UsageError
from pooledcrawl.settings_groups import GROUPS, aliases

__all__ = ["Schema"]

_COMPONENT_KEYS = frozenset({"middlewares", "extensions"})
_CLASS_KEYS = frozenset({"transport_class", "frontier_class", "policy_class"})


class _Layered(Protocol):
    """A frozen dataclass of settings (``Settings``), made from no arguments."""

    def __init__(self) -> None: ...


S = TypeVar("S", bound=_Layered)


class Schema(Generic[S]):
    """The settings of dataclass ``cls`` by canonical name (a nested field's name is
    dotted), and the reading of layers of them."""

    __slots__ = ("_types",)

    def __init__(self, cls: type[S]) -> None:
        types: dict[str, Any] = {}
        for key, tp in get_type_hints(cls).items():
            if key in GROUPS:
                types.update((f"{key}.{sub}", t) for sub, t in get_type_hints(GROUPS[key]).items())
            else:
                types[key] = tp
        self._types = types

    def keys(self) -> list[str]:
        """Every setting's name; a nested one is dotted (``postgres.pool_size``)."""
        return list(self._types)

    def is_setting(self, key: str) -> bool:
        """Whether ``key`` names a setting: flat, dotted, or an old flat name."""
        return key in self._types or key in aliases()

    def field_type(self, key: str) -> Any:
        """The type of setting ``key`` (dotted, flat, or an old flat name)."""
        return self._types[self.canonical(key)]

    def canonical(self, key: str, *, source: str = "settings") -> str:
        """The name setting ``key`` has in :class:`Settings`: old flat names map to their
        nested field; an unknown name is a UsageError with the closest known one."""
        if key in self._types:
            return key
        if key in aliases():
            return aliases()[key]
        # a dotted name is matched against dotted names first, an old flat name against both
        known = list(self._types) if "." in key else [*self._types, *aliases()]
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"{source}: unknown setting {key!r}{hint}")

    def flatten(self, layer: Mapping[str, Any], *, source: str = "settings") -> dict[str, Any]:
        """``layer`` by canonical names: ``pg_pool_size`` and ``{"postgres": {"pool_size": 4}}``
        both become ``postgres.pool_size``; values are left as given."""
        out: dict[str, Any] = {}
        for key, value in layer.items():
            if key not in GROUPS:
                out[self.canonical(key, source=source)] = value
                continue
            if isinstance(value, GROUPS[key]):
                value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            elif isinstance(value, str):  # from -s postgres='{"pool_size": 4}'
                with contextlib.suppress(orjson.JSONDecodeError):
                    value = orjson.loads(value)
            if not isinstance(value, Mapping):
                raise UsageError(
                    f"{source}: setting {key}: expected a mapping of {key}.* settings, "
                    f"got {value!r}"
                )
            for sub, item in value.items():
                out[self.canonical(f"{key}.{sub}", source=source)] = item
        return out

    def coerce(self, key: str, value: Any, *, source: str = "settings") -> Any:
        """Check ``value`` against the type of setting ``key``; strings (from ``-s``) are
        parsed."""
        name = self.canonical(key, source=source)
        try:
            if name in _COMPONENT_KEYS:
                return coerce_components(value)
            if name == "sink_schemes":
                return coerce_schemes(value)
            if name in _CLASS_KEYS:
                if value is None or isinstance(value, str | type):
                    return value or None
                raise TypeError(f"expected a class or a dotted path, got {value!r}")
            return coerce_to(self._types[name], value)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{source}: setting {key}: {exc}") from None

    # ---- layering --------------------------------------------------------------------
    def get(self, settings: S, key: str) -> Any:
        """The value of setting ``key`` in ``settings``."""
        group, _, sub = self.canonical(key).rpartition(".")
        return getattr(getattr(settings, group), sub) if group else getattr(settings, sub)

    def merged(self, settings: S, layer: Mapping[str, Any], *, source: str) -> S:
        """A copy of ``settings`` with ``layer`` applied on top."""
        if not layer:
            return settings
        changes = self._checked(layer, source)
        try:
            return self._replaced(settings, changes)
        except UsageError as exc:
            raise UsageError(f"{source}: {_as_spelled(str(exc), layer)}") from None

    def layered(self, cls: type[S], *layers: tuple[str, Mapping[str, Any]]) -> S:
        """``(source, mapping)`` layers applied in order over the defaults of ``cls`` (the
        class or a subclass); only the end result has to be consistent (see
        ``Settings.layered``)."""
        changes: dict[str, Any] = {}
        for source, layer in layers:
            changes.update(self._checked(layer, source))
        try:
            return self._replaced(cls(), changes)
        except UsageError:
            # Replay layer by layer so the message names the layer at fault.
            settings = cls()
            for source, layer in layers:
                settings = self.merged(settings, layer, source=source)
            raise

    def _replaced(self, settings: S, changes: Mapping[str, Any]) -> S:
        """A copy with ``changes`` (canonical keys, checked values) applied."""
        flat: dict[str, Any] = {k: v for k, v in changes.items() if "." not in k}
        for group in GROUPS:
            prefix = f"{group}."
            nested = {k[len(prefix) :]: v for k, v in changes.items() if k.startswith(prefix)}
            if nested:
                flat[group] = dataclasses.replace(getattr(settings, group), **nested)
        return dataclasses.replace(settings, **flat)  # type: ignore[type-var]

    def _checked(self, layer: Mapping[str, Any], source: str) -> dict[str, Any]:
        return {
            key: self.coerce(key, value, source=source)
            for key, value in self.flatten(layer, source=source).items()
        }


def _as_spelled(message: str, layer: Mapping[str, Any]) -> str:
    """The message with each nested name as the layer spelled it (an old flat name)."""
    for key in layer:
        if key in aliases():
            message = message.replace(f"setting {aliases()[key]}:", f"setting {key}:")
    return message
