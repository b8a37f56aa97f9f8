"""Item models: a dataclass or a pydantic model that items are checked against, and the
typed PostgreSQL columns a dataclass gives. pydantic is imported only when used."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import types
import typing
import uuid
from collections.abc import Mapping
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from pooledcrawl.components import load_object
from pooledcrawl.errors import DropItem, UsageError

__all__ = [
    "dataclass_columns",
    "is_pydantic_model",
    "model_for",
    "validate_dataclass",
]

#: Python annotation -> PostgreSQL column type; anything else is stored as jsonb.
_SQL_TYPES: dict[Any, str] = {
    bool: "boolean",
    int: "bigint",
    float: "double precision",
    str: "text",
    bytes: "bytea",
    decimal.Decimal: "numeric",
    datetime.datetime: "timestamptz",
    datetime.date: "date",
    uuid.UUID: "uuid",
}


def model_for(setting: str | None, spider: object | None) -> type | None:
    """The item model: the ``item_model`` setting, else the spider's ``item_model`` attribute."""
    model: Any = getattr(spider, "item_model", None) if setting is None else setting
    if model is None:
        return None
    if isinstance(model, str):
        model = load_object(model, "item_model")
    if not isinstance(model, type) or not (
        dataclasses.is_dataclass(model) or is_pydantic_model(model)
    ):
        raise UsageError(f"item_model {model!r} is neither a dataclass nor a pydantic model")
    return model


def is_pydantic_model(model: type) -> bool:
    # Duck-typed so pydantic is never imported for users who don't have it.
    return hasattr(model, "model_validate") and hasattr(model, "model_fields")


def validate_dataclass(model: type, item: Any) -> Any:
    """An instance of ``model`` built from ``item``; raises DropItem naming the first problem."""
    if isinstance(item, model):
        data = {f.name: getattr(item, f.name) for f in dataclasses.fields(model)}
    elif isinstance(item, Mapping):
        data = dict(item)
    elif dataclasses.is_dataclass(item) and not isinstance(item, type):
        data = dataclasses.asdict(item)
    else:
        raise DropItem(f"invalid {model.__name__}: not a mapping")
    fields = {f.name: f for f in dataclasses.fields(model) if f.init}
    for key in data:
        if key not in fields:
            raise DropItem(f"invalid {model.__name__}: unexpected field {key!r}")
    hints = _hints(model)
    for name, field in fields.items():
        if name not in data:
            if (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            ):
                raise DropItem(f"invalid {model.__name__}: missing field {name!r}")
            continue
        if not _matches(data[name], hints.get(name, Any)):
            raise DropItem(f"invalid {model.__name__}: field {name!r} has the wrong type")
    return model(**data)


def dataclass_columns(model: type) -> list[tuple[str, str]]:
    """(name, PostgreSQL type) for each field of a dataclass, in declaration order."""
    hints = _hints(model)
    return [(f.name, _sql_type(hints.get(f.name, Any))) for f in dataclasses.fields(model)]


def _hints(model: type) -> dict[str, Any]:
    try:
        return get_type_hints(model)
    except Exception:  # an unresolvable forward reference: check nothing rather than crash
        return {}


def _sql_type(tp: Any) -> str:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return _sql_type(args[0]) if len(args) == 1 else "jsonb"
    return _SQL_TYPES.get(tp, "jsonb")


def _matches(value: Any, tp: Any) -> bool:
    if tp is Any or isinstance(tp, typing.TypeVar):
        return True
    if tp is None or tp is type(None):
        return value is None
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(_matches(value, arg) for arg in get_args(tp))
    if origin is Literal:
        return value in get_args(tp)
    if origin is not None:
        return isinstance(origin, type) and isinstance(value, origin)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True  # annotations we cannot check (strings, NewType...) pass
