"""The event loop whose timers fire on time (engine/eventloop.py)."""

from __future__ import annotations

import asyncio
import ctypes
import os
import select
import selectors
import socket
import sys
import time

import pytest

from pooledcrawl.engine import eventloop
from pooledcrawl.engine.eventloop import TimerfdSelector, new_event_loop

linux_only = pytest.mark.skipif(
    eventloop._libc() is None, reason="timerfd is Linux-only; elsewhere the default loop"
)


def _remaining(selector: TimerfdSelector) -> float:
    """Seconds until the selector's timer expires, as the kernel has it (0.0: disarmed)."""
    spec = eventloop._Itimerspec()
    assert selector._libc.timerfd_gettime(selector._timerfd, ctypes.byref(spec)) == 0
    return spec.it_value.tv_sec + spec.it_value.tv_nsec / 1e9


@linux_only
def test_the_timer_is_armed_to_the_microsecond_not_the_millisecond() -> None:
    selector = TimerfdSelector(eventloop._libc())
    a, b = socket.socketpair()
    try:
        selector.register(a, selectors.EVENT_READ, "peer")
        b.send(b"x")  # ready at once: select returns before its timeout
        ready = selector.select(0.0123456)
        assert [key.data for key, _ in ready] == ["peer"]
        left = _remaining(selector)
        # armed for the deadline asked, not rounded up to 13 ms as epoll_wait's own
        # timeout is
        assert 0.0 < left <= 0.0123456
    finally:
        selector.close()
        a.close()
        b.close()


@linux_only
def test_an_expired_timer_is_consumed_and_never_returned_as_a_key() -> None:
    selector = TimerfdSelector(eventloop._libc())
    try:
        start = time.monotonic()
        assert selector.select(0.0004) == []
        assert time.monotonic() - start >= 0.0004  # never early
        # read: the descriptor is no longer readable, so the loop does not spin
        readable, _, _ = select.select([selector._timerfd], [], [], 0)
        assert readable == []
        assert selector.select(0) == []
        assert _remaining(selector) == 0.0
    finally:
        selector.close()


@linux_only
def test_the_same_deadline_is_not_armed_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    selector = TimerfdSelector(eventloop._libc())
    calls = []
    real = selector._libc

    class CountingLibc:
        def timerfd_settime(self, *args: object) -> int:
            calls.append(args)
            return int(real.timerfd_settime(*args))

    selector._libc = CountingLibc()
    try:
        deadline = time.monotonic() + 5.0
        selector._arm(deadline)
        selector._arm(deadline + 1e-7)  # the same timer, recomputed a moment later
        selector._arm(deadline - 1.0)  # an earlier one
        assert len(calls) == 2
    finally:
        selector._libc = real
        selector.close()


@linux_only
def test_loop_runs_timers_and_io_and_closes_its_descriptor() -> None:
    loop = new_event_loop()
    selector = loop._selector  # type: ignore[attr-defined]
    assert isinstance(selector, TimerfdSelector)
    fd = selector._timerfd

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    async def main() -> list[str]:
        order: list[str] = []
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        async with server:
            reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
            loop.call_later(0.002, order.append, "timer")
            await asyncio.sleep(0.001)
            order.append("slept")
            writer.write(b"ping\n")
            order.append((await reader.readline()).decode().strip())
            writer.close()
            await writer.wait_closed()
            await asyncio.sleep(0.002)
        return order

    try:
        order = loop.run_until_complete(main())
    finally:
        loop.close()
    assert order[0] == "slept" and "ping" in order and "timer" in order
    assert selector._timerfd == -1
    with pytest.raises(OSError):
        os.fstat(fd)  # closed with the loop


def test_run_returns_the_result_on_the_precise_loop_where_there_is_one() -> None:
    async def which() -> str:
        return type(asyncio.get_running_loop()._selector).__name__  # type: ignore[attr-defined]

    expected = "TimerfdSelector" if eventloop._libc() is not None else None
    name = eventloop.run(which())
    if expected:
        assert name == expected


def test_elsewhere_the_default_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert eventloop._libc() is None
    loop = new_event_loop()
    try:
        assert not isinstance(getattr(loop, "_selector", None), TimerfdSelector)
    finally:
        loop.close()


def test_a_libc_that_refuses_a_timer_gives_the_default_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class NoTimers:
        def timerfd_create(self, *args: object) -> int:
            return -1

    monkeypatch.setattr(eventloop, "_libc", NoTimers)
    loop = new_event_loop()
    try:
        assert not isinstance(getattr(loop, "_selector", None), TimerfdSelector)
    finally:
        loop.close()


async def test_async_tests_run_on_the_crawl_loop() -> None:
    selector = getattr(asyncio.get_running_loop(), "_selector", None)
    assert isinstance(selector, TimerfdSelector) or eventloop._libc() is None
