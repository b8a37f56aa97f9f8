"""The Spider base class, and loading a spider class from a CLI target."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

from pooledcrawl.errors import UsageError
from pooledcrawl.http.request import Request
from pooledcrawl.http.response import Response

__all__ = ["Spider", "load_spider_class"]


class Spider:
    """Subclass this; yield items and Requests from callbacks.

    ``-a KEY=VALUE`` arguments arrive as keyword arguments and become attributes,
    as in Scrapy.
    """

    name: ClassVar[str] = ""
    start_urls: ClassVar[list[str]] = []
    allowed_domains: ClassVar[list[str]] = []
    custom_settings: ClassVar[dict[str, Any]] = {}
    profile: ClassVar[str | None] = None
    pipelines: ClassVar[list[Any]] = []

    def __init__(self, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            setattr(self, key, value)
        if not getattr(self, "name", ""):
            self.name = type(self).__name__.lower()  # type: ignore[misc]
        #: persisted across pause and resume by frontiers that can persist
        self.state: dict[str, Any] = {}

    async def start(self) -> AsyncIterator[Request]:
        """The first requests. The default fetches ``start_urls`` with ``parse``."""
        for url in self.start_urls:
            yield Request(url, dont_filter=True)

    def parse(self, response: Response) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.parse is not defined")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def load_spider_class(target: str) -> type[Spider]:
    """Find the Spider class named by ``file.py``, ``file.py:Class`` or ``pkg.mod:Class``.

    Every way this can go wrong is a :class:`UsageError` with one clear line.
    """
    location, _, class_name = target.partition(":")
    if location.endswith(".py") or "/" in location or Path(location).suffix == ".py":
        module = _load_file(Path(location))
    else:
        try:
            module = importlib.import_module(location)
        except SyntaxError as exc:
            raise UsageError(_syntax_message(location, exc)) from None
        except ImportError as exc:
            raise UsageError(f"cannot import spider module {location!r}: {exc}") from None
        except Exception as exc:  # the user's module failed at import time
            raise UsageError(
                f"{location}: error while importing: {type(exc).__name__}: {exc}"
            ) from None
    if class_name:
        obj = getattr(module, class_name, None)
        if not (inspect.isclass(obj) and issubclass(obj, Spider)):
            raise UsageError(f"{location}: no Spider subclass named {class_name!r}")
        return obj
    found = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, Spider)
        and obj is not Spider
        and obj.__module__ == module.__name__
    ]
    if not found:
        raise UsageError(f"{location}: no Spider subclass found")
    if len(found) > 1:
        names = ", ".join(sorted(cls.__name__ for cls in found))
        raise UsageError(f"{location}: several Spider subclasses ({names}); pick one with :Name")
    return found[0]


def _load_file(path: Path) -> Any:
    if not path.is_file():
        raise UsageError(f"spider file not found: {path}")
    module_name = f"pooledcrawl_spider_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot load spider file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise UsageError(_syntax_message(str(path), exc)) from None
    except Exception as exc:
        raise UsageError(f"{path}: error while importing: {type(exc).__name__}: {exc}") from None
    return module


def _syntax_message(location: str, exc: SyntaxError) -> str:
    return f"{location}:{exc.lineno}: syntax error: {exc.msg}"
