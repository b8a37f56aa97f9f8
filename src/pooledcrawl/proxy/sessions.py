"""Sticky proxy sessions: which exit a request leaves from, and when to change it.

Residential and mobile gateways pick the exit IP from a session id written into
the proxy username or password (``user-session-abc123``): the same id keeps the
same IP, a new id gets a new one. A :class:`ProxySession` is that id with its
proxy identity and counters; its cookies live with it (the transport keeps one
HTTP session, so one cookie jar and one set of keep-alive connections, per
proxy identity). A blocked session is retired, as Crawlee's ``SessionPool``
retires one, and the next request gets a fresh id.

Pure: the engine passes the time; ids come from a seeded generator in tests.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from typing import Any

from pooledcrawl.proxy.endpoint import Proxy, SessionConfig, parse_template

__all__ = ["ProxySession", "SessionConfig", "SessionPool", "parse_template"]

_ID_ALPHABET = string.ascii_lowercase + string.digits


class ProxySession:
    """One sticky session: an id, the proxy identity carrying it, and its counters."""

    __slots__ = ("blocks", "created", "domain", "id", "inflight", "proxy", "retired", "uses")

    def __init__(self, session_id: str, proxy: Proxy, domain: str | None, now: float) -> None:
        self.id = session_id
        self.proxy = proxy
        self.domain = domain
        self.created = now
        self.uses = 0
        self.blocks = 0
        self.inflight = 0
        self.retired = False

    def age(self, now: float) -> float:
        return now - self.created

    def __repr__(self) -> str:  # never the proxy URL: it holds the credentials
        return f"<ProxySession {self.id} uses={self.uses} blocks={self.blocks}>"


class SessionPool:
    """Live sessions per domain (or one shared set), created on demand up to ``pool_size``.

    A request takes the least-used live session, so load spreads over ``pool_size``
    exits; a session past ``max_age`` or ``max_uses`` or blocked is retired and a
    new id takes its place.
    """

    def __init__(self, config: SessionConfig, *, rng: random.Random | None = None) -> None:
        self.config = config
        self._rng = rng or random.Random()
        self._live: dict[str | None, list[ProxySession]] = {}
        self.created = 0
        self.retired = 0
        self.retired_blocked = 0

    def _new_id(self) -> str:
        return "".join(self._rng.choice(_ID_ALPHABET) for _ in range(10))

    def take(self, proxy: Proxy, domain: str, now: float) -> ProxySession:
        """The session the next request to ``domain`` through ``proxy`` uses."""
        key = domain if self.config.per_domain else None
        live = self._live.setdefault(key, [])
        best: ProxySession | None = None
        for session in list(live):
            if self._worn_out(session, now):
                if not session.inflight:
                    self._retire(live, session, blocked=False)
                continue
            if session.proxy.host != proxy.host or session.proxy.port != proxy.port:
                continue
            if best is None or (session.inflight, session.uses) < (best.inflight, best.uses):
                best = session
        if best is None or (best.inflight > 0 and len(live) < self.config.pool_size):
            session_id = self._new_id()
            best = ProxySession(session_id, self.config.identity(proxy, session_id), key, now)
            live.append(best)
            self.created += 1
        best.uses += 1
        best.inflight += 1
        return best

    def _worn_out(self, session: ProxySession, now: float) -> bool:
        cfg = self.config
        if cfg.max_age is not None and session.age(now) >= cfg.max_age:
            return True
        return cfg.max_uses is not None and session.uses >= cfg.max_uses

    def done(self, session: ProxySession, now: float, *, blocked: bool) -> bool:
        """The request on ``session`` ended; a block retires it, as does the end of its
        last request once worn out. True when this call retired it (its connections and
        cookies may be dropped now)."""
        session.inflight -= 1
        if blocked:
            session.blocks += 1
        if session.retired:
            return False
        if blocked or (not session.inflight and self._worn_out(session, now)):
            self._retire(self._live.get(session.domain, []), session, blocked=blocked)
            return True
        return False

    def retire(self, session: ProxySession) -> bool:
        """``session`` was blocked (after its request ended): it is not used again. True
        when this call retired it."""
        session.blocks += 1
        if session.retired:
            return False
        self._retire(self._live.get(session.domain, []), session, blocked=True)
        return True

    def _retire(self, live: list[ProxySession], session: ProxySession, *, blocked: bool) -> None:
        session.retired = True
        if session in live:
            live.remove(session)
        self.retired += 1
        if blocked:
            self.retired_blocked += 1

    def sessions(self) -> Iterator[ProxySession]:
        for live in self._live.values():
            yield from live

    def snapshot(self) -> dict[str, Any]:
        live = list(self.sessions())
        return {
            "created": self.created,
            "retired": self.retired,
            "retired_blocked": self.retired_blocked,
            "live": len(live),
        }
