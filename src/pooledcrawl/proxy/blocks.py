"""Block detection: is this response the page, or the site refusing this exit?

Blocks are often not a 403: a 200 can carry a CAPTCHA or "access denied" page,
a redirect can land on ``/challenge``, a body can come back empty. One decision
looks at all of it, so every caller (session rotation, tier escalation, the
stats) agrees on what a block is. Pure: it reads a response, nothing else.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pooledcrawl.errors import UsageError
from pooledcrawl.http.response import Response

if TYPE_CHECKING:
    from pooledcrawl.proxy.sessions import ProxySession
    from pooledcrawl.proxy.tiers import TierSet
    from pooledcrawl.settings import Settings

__all__ = ["BlockBook", "BlockDecision", "BlockDetector", "compile_patterns"]

#: bytes of the body the patterns see: block pages are short, and a scan of a
#: 10 MB page for "captcha" on every response would cost more than parsing it
DEFAULT_SCAN_BYTES = 16 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class BlockDecision:
    """Why a response is a block: ``status``, ``pattern``, ``challenge``, ``empty``, ``spider``."""

    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


def compile_patterns(patterns: Iterable[str], *, where: str) -> tuple[re.Pattern[bytes], ...]:
    """Regexes over the body's bytes (case-insensitive); a bad one is a usage error."""
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern.encode("utf-8"), re.IGNORECASE))
        except re.error as exc:
            raise UsageError(f"{where}: invalid regex {pattern!r}: {exc}") from None
    return tuple(compiled)


class BlockDetector:
    """Decides whether a response is a block; ``check`` returns None for a real page."""

    def __init__(
        self,
        *,
        ban_statuses: Iterable[int] = (403,),
        ban_patterns: Sequence[str] = (),
        challenge_paths: Sequence[str] = (),
        empty_body: bool = False,
        scan_bytes: int = DEFAULT_SCAN_BYTES,
        hook: Callable[[Response], bool | str | None] | None = None,
        where: str = "ban_patterns",
    ) -> None:
        self.ban_statuses = frozenset(ban_statuses)
        self._patterns = compile_patterns(ban_patterns, where=where)
        self._pattern_text = tuple(ban_patterns)
        self._challenges = tuple(p.rstrip("/") or "/" for p in challenge_paths)
        self._empty_body = empty_body
        self._scan = scan_bytes
        self._hook = hook

    @property
    def inspects_pages(self) -> bool:
        """Whether a 2xx page can be a block (else only statuses are looked at)."""
        return bool(self._patterns or self._challenges or self._empty_body or self._hook)

    def check(self, response: Response) -> BlockDecision | None:
        status = response.status
        if status in self.ban_statuses:
            return BlockDecision("status", f"HTTP {status}")
        if self._challenges and response.url != response.request.url:
            path = urlsplit(response.url).path.rstrip("/") or "/"
            for prefix in self._challenges:
                if path == prefix or path.startswith(prefix + "/"):
                    return BlockDecision("challenge", f"redirected to {prefix}")
        if 200 <= status < 300:
            body = response.body
            if self._empty_body and not body and status != 204 and response.request.method == "GET":
                return BlockDecision("empty", "empty body")
            if self._patterns and body:
                head = body[: self._scan]
                for pattern, text in zip(self._patterns, self._pattern_text, strict=True):
                    if pattern.search(head):
                        return BlockDecision("pattern", text)
        if self._hook is not None:
            verdict = self._hook(response)
            if verdict:
                return BlockDecision(
                    "spider", verdict if isinstance(verdict, str) else "is_blocked"
                )
        return None


class BlockBook:
    """Detects blocks and counts them per domain, tier, session and proxy."""

    def __init__(self, detector: BlockDetector) -> None:
        self.detector = detector
        self.total = 0
        self.kinds: Counter[str] = Counter()
        self._by: dict[str, Counter[str]] = defaultdict(Counter)
        self.retried = 0

    @classmethod
    def create(cls, settings: Settings, spider: object, tiers: TierSet) -> BlockBook | None:
        """None when nothing can be a block beyond today's proxy ban statuses: a crawl
        that configures none of this pays nothing for it."""
        hook = getattr(spider, "is_blocked", None)
        patterns = [*settings.ban_patterns, *getattr(spider, "ban_patterns", ())]
        sessions = any(t.sessions is not None for t in tiers.tiers)
        if not (
            patterns
            or settings.ban_challenge_paths
            or settings.ban_empty_body
            or hook is not None
            or sessions
            or len(tiers) > 1
        ):
            return None
        where = f"{type(spider).__name__}.ban_patterns / setting ban_patterns"
        detector = BlockDetector(
            ban_statuses=settings.ban_statuses,
            ban_patterns=patterns,
            challenge_paths=settings.ban_challenge_paths,
            empty_body=settings.ban_empty_body,
            scan_bytes=settings.ban_scan_bytes,
            hook=hook,
            where=where,
        )
        return cls(detector)

    def count(
        self,
        decision: BlockDecision,
        *,
        domain: str,
        tier: str,
        session: ProxySession | None,
        proxy: str | None,
    ) -> None:
        self.total += 1
        self.kinds[decision.kind] += 1
        self._by["domain"][domain] += 1
        self._by["tier"][tier] += 1
        if proxy is not None:
            self._by["proxy"][proxy] += 1
        if session is not None:
            self._by["session"][session.id] += 1

    def snapshot(self, tiers: TierSet) -> dict[str, Any]:
        sessions = {t.name: t.sessions.snapshot() for t in tiers.tiers if t.sessions is not None}
        by_session = self._by["session"]
        return {
            "total": self.total,
            "retried": self.retried,
            "kinds": dict(self.kinds.most_common()),
            "domain": dict(self._by["domain"].most_common()),
            "tier": dict(self._by["tier"].most_common()),
            "proxy": dict(self._by["proxy"].most_common()),
            # the most blocked sessions only: a long crawl retires thousands
            "session": dict(by_session.most_common(20)),
            "sessions_blocked": len(by_session),
            "sessions": sessions,
        }
