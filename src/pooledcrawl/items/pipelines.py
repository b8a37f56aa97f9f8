"""Item pipelines: loading them from settings and the spider, and the built-in ones.

A pipeline is any object with ``process_item(item, spider)``, sync or async, which
returns the item (or a replacement; None keeps the item as it is) or raises
:class:`~pooledcrawl.errors.DropItem`. ``open(spider)`` and ``close(spider)`` are
optional, sync or async. A class with a ``from_settings(settings)`` classmethod is
built with it, any other class with no arguments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from pooledcrawl.components import load_object
from pooledcrawl.errors import DropItem, UsageError
from pooledcrawl.items.base import Item, item_to_dict, json_default
from pooledcrawl.items.models import is_pydantic_model, model_for, validate_dataclass

if TYPE_CHECKING:
    from pooledcrawl.settings import Settings
    from pooledcrawl.spider import Spider

__all__ = ["Dedupe", "Pipeline", "RequireFields", "Validate", "build_pipelines"]


class Pipeline(Protocol):
    def process_item(self, item: Item, spider: Spider) -> Any: ...


class Dedupe:
    """Drops an item whose ``field`` value was seen before (items without it pass)."""

    def __init__(self, field: str = "url") -> None:
        self.field = field
        self._seen: set[Any] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> Dedupe:
        return cls(settings.dedupe_field)

    def process_item(self, item: Item, spider: Spider) -> Item:
        value = _get(item, self.field, _MISSING)
        if value is _MISSING:
            return item
        try:
            hash(value)
        except TypeError:  # a list or dict: compare its JSON form
            value = orjson.dumps(value, default=json_default, option=orjson.OPT_SORT_KEYS)
        if value in self._seen:
            raise DropItem(f"duplicate {self.field}")
        self._seen.add(value)
        return item


class RequireFields:
    """Drops an item where one of ``fields`` is missing, None, or empty."""

    def __init__(self, *fields: str) -> None:
        if not fields:
            raise UsageError("RequireFields needs at least one field (setting required_fields)")
        self.fields = fields

    @classmethod
    def from_settings(cls, settings: Settings) -> RequireFields:
        return cls(*settings.required_fields)

    def process_item(self, item: Item, spider: Spider) -> Item:
        for field in self.fields:
            value = _get(item, field, None)
            if value is None or value == "" or value == [] or value == {}:
                raise DropItem(f"missing {field}")
        return item


class Validate:
    """Checks items against a dataclass or pydantic model and passes on the validated
    value: a dataclass instance, or the pydantic model's ``model_dump()``.

    The model is the one given, else the ``item_model`` setting, else the spider's
    ``item_model`` attribute.
    """

    def __init__(self, model: type | str | None = None) -> None:
        self._given = model
        self._setting: str | None = None
        self.model: type | None = None
        self._validation_error: type[Exception] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Validate:
        pipeline = cls()
        pipeline._setting = settings.item_model
        return pipeline

    def open(self, spider: Spider) -> None:
        if isinstance(self._given, type):
            self.model = model_for(None, _Holder(self._given))
        else:
            self.model = model_for(self._given or self._setting, spider)
        if self.model is None:
            raise UsageError(
                "the Validate pipeline needs a model: set item_model or the spider's item_model"
            )
        if is_pydantic_model(self.model):
            import pydantic  # lazily: only users of pydantic models need it

            self._validation_error = pydantic.ValidationError

    def process_item(self, item: Item, spider: Spider) -> Item:
        model = self.model
        if model is None:
            self.open(spider)
            model = self.model
            assert model is not None
        if self._validation_error is None:
            return validate_dataclass(model, item)
        try:
            validated = model.model_validate(item_to_dict(item))  # type: ignore[attr-defined]
        except self._validation_error as exc:
            errors = exc.errors()  # type: ignore[attr-defined]
            where = ".".join(str(p) for p in errors[0]["loc"]) if errors else "?"
            raise DropItem(f"invalid {model.__name__}: field {where!r}") from None
        dumped: dict[str, Any] = validated.model_dump()
        return dumped


BUILTINS: dict[str, type] = {
    "Dedupe": Dedupe,
    "RequireFields": RequireFields,
    "Validate": Validate,
}


def build_pipelines(entries: Iterable[Any], settings: Settings) -> list[Any]:
    """Pipeline objects for ``entries``: dotted paths, built-in names, classes or instances.

    A class named twice (by the spider and the settings) is built once.
    """
    pipelines: list[Any] = []
    seen: set[type] = set()
    for entry in entries:
        obj = entry
        if isinstance(entry, str):
            obj = BUILTINS.get(entry) or load_object(entry, "pipeline")
        if isinstance(obj, type):
            if obj in seen:
                continue
            seen.add(obj)
            factory = getattr(obj, "from_settings", None)
            try:
                obj = factory(settings) if callable(factory) else obj()
            except UsageError:
                raise
            except Exception as exc:
                raise UsageError(
                    f"pipeline {obj.__name__}: cannot be built: {type(exc).__name__}: {exc}"
                ) from None
        if not callable(getattr(obj, "process_item", None)):
            raise UsageError(f"pipeline {entry!r} has no process_item(item, spider) method")
        pipelines.append(obj)
    return pipelines


@dataclasses.dataclass(frozen=True)
class _Holder:
    item_model: type


_MISSING: Any = object()


def _get(item: Item, field: str, default: Any) -> Any:
    if isinstance(item, dict):
        return item.get(field, default)
    return getattr(item, field, default)
