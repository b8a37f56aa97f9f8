"""Running a spider callback, whatever kind of callable it is."""

from __future__ import annotations

import inspect
import types
from collections.abc import AsyncIterator, Callable
from typing import Any

__all__ = ["iterate_callback"]

_SINGLE = (dict, str, bytes)


async def iterate_callback(
    callback: Callable[..., Any], *args: Any, **kwargs: Any
) -> AsyncIterator[Any]:
    """Yield what a callback produced: it may be a function, a generator, a
    coroutine, or an async generator, returning one object, an iterable, or None."""
    result = callback(*args, **kwargs)
    if type(result) is types.AsyncGeneratorType or hasattr(result, "__anext__"):
        async for output in result:
            yield output
        return
    if inspect.isawaitable(result):
        result = await result
    if result is None:
        return
    if isinstance(result, _SINGLE) or not hasattr(result, "__iter__"):
        yield result
        return
    for output in result:
        yield output
