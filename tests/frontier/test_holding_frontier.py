"""HoldingFrontier: the base of the robots.txt filter and politeness_key=ip routing."""

from __future__ import annotations

import asyncio

from pooledcrawl.frontier.holding import HoldingFrontier
from pooledcrawl.frontier.memory import MemoryFrontier
from pooledcrawl.http.request import Request


class _HoldEach(HoldingFrontier):
    """Holds every request until a background task lets it go."""

    def _take(self, now: float) -> Request | None:
        request = self._inner.pop(now)
        if request is not None:
            self._held += 1
            self._spawn("release", self._release, request)
        return None

    async def _release(self, request: Request) -> None:
        await asyncio.sleep(0)
        self._ready.append(request)
        self._on_ready()


async def test_a_held_request_comes_out_after_its_task_and_then_the_crawl_is_done() -> None:
    inner = MemoryFrontier()
    frontier = _HoldEach(inner)
    woken = asyncio.Event()
    frontier.on_ready = woken.set
    inner.push(Request("http://a.test/"), "http://a.test/")
    assert frontier.pop(0.0) is None
    assert len(frontier) == 1 and not frontier.exhausted()
    await woken.wait()  # directly: a wait_for would add loop turns before it resumes
    request = frontier.pop(0.0)
    assert request is not None and request.url == "http://a.test/"
    # the task that let it go is finished by the time its wake-up is seen, or a
    # dispatcher woken by it would wait for nothing
    assert frontier.exhausted() and len(frontier) == 0
    await frontier.close()


async def test_close_cancels_the_tasks_still_running() -> None:
    inner = MemoryFrontier()
    frontier = _HoldEach(inner)
    inner.push(Request("http://a.test/"), "http://a.test/")
    frontier.pop(0.0)
    assert not frontier.exhausted()
    await frontier.close()
    assert not frontier._tasks
