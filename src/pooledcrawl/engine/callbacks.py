"""Running a spider callback, whatever kind of callable it is."""

from __future__ import annotations

import inspect
import types
from collections.abc import AsyncIterator, Callable
from typing import Any

__all__ = ["iterate_callback", "outputs_of"]

_SINGLE = (dict, str, bytes)


async def iterate_callback(
    callback: Callable[..., Any], *args: Any, **kwargs: Any
) -> AsyncIterator[Any]:
    """Yield what a callback produced: it may be a function, a generator, a
    coroutine, or an async generator, returning one object, an iterable, or None."""
    async for output in outputs_of(callback(*args, **kwargs)):
        yield output


async def outputs_of(result: Any) -> AsyncIterator[Any]:
    """Yield the outputs of what a callback returned (see :func:`iterate_callback`)."""
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
