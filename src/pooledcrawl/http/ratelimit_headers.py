"""Rate-limit headers: what a server says about how fast it may be fetched. Pure
functions: bad values give None, never raise.

Servers say it in three families of headers:

* ``Retry-After`` (RFC 9110, section 10.2.3): delay-seconds or an HTTP-date;
* the IETF httpapi draft "RateLimit header fields for HTTP":
  ``RateLimit-Policy: "p";q=100;w=60`` and ``RateLimit: "p";r=50;t=30`` (structured
  fields, RFC 8941), plus the forms of its earlier revisions
  (``RateLimit-Limit/Remaining/Reset`` and ``RateLimit: limit=100, remaining=50, reset=30``);
* the older, still common ``X-RateLimit-Limit/Remaining/Reset``.

What a crawl makes of them (a rate, a pause) is the throttle's business:
:mod:`pooledcrawl.throttle.hints`.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Callable, Mapping
from typing import NamedTuple

from pooledcrawl.http.structured_fields import Member, sf_list
from pooledcrawl.http.structured_fields import number as sf_number

__all__ = [
    "RateLimit",
    "header_value",
    "http_date",
    "parse_ratelimit",
    "parse_retry_after",
    "retry_after_from_headers",
]

#: ``X-RateLimit-Reset`` above this is a Unix time, below it a number of seconds.
_EPOCH_THRESHOLD = 1_000_000_000.0

_RATE_FIELDS = (
    "RateLimit-Policy",
    "RateLimit",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
)


class RateLimit(NamedTuple):
    """The rate-limit fields of a response; any part may be unknown (None)."""

    quota: float | None
    """Requests allowed per ``window``."""
    window: float | None
    """Length of the quota window, in seconds."""
    remaining: float | None
    """Requests left before the window resets."""
    reset: float | None
    """Seconds until the window resets (and ``remaining`` is back to ``quota``)."""


def parse_retry_after(value: str | None, now_epoch: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP-date.

    ``now_epoch`` is wall-clock time (HTTP-dates are absolute). A date in the past
    means 0; anything unparsable means None.
    """
    if value is None:
        return None
    text = value.strip()
    if not text or len(text) > 64:
        return None
    if text.isascii() and text.isdigit():  # isdigit() alone accepts "²"
        return float(text)
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    when = http_date(text)
    if when is None:
        return None
    return max(0.0, when - now_epoch)


def retry_after_from_headers(
    headers: Mapping[str, str], now_epoch: float | Callable[[], float]
) -> tuple[float | None, bool]:
    """``(seconds, malformed)`` for the response's ``Retry-After``.

    An HTTP-date is measured against the response's own ``Date`` header when it
    has one, so a client clock that is off does not stretch or cancel the pause.
    """
    value = header_value(headers, "Retry-After")
    if value is None:
        return None, False
    seconds = parse_retry_after(value, _epoch(now_epoch))
    if seconds is None:
        return None, True
    if not _looks_numeric(value.strip()):
        server_now = http_date(header_value(headers, "Date") or "")
        when = http_date(value.strip())
        if server_now is not None and when is not None:
            seconds = max(0.0, when - server_now)
    return seconds, False


def _looks_numeric(text: str) -> bool:
    return text.isascii() and text.replace(".", "", 1).isdigit()


def http_date(text: str) -> float | None:
    if not text or len(text) > 64:
        return None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    try:
        return when.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


# ---- rate-limit fields --------------------------------------------------------------


def parse_ratelimit(
    headers: Mapping[str, str], now_epoch: float | Callable[[], float]
) -> tuple[RateLimit | None, int]:
    """``(limit, malformed)``: what the server's rate-limit fields say, and how many
    of them could not be understood (those are ignored).

    ``now_epoch`` (wall-clock time, or a function giving it) is only read for a
    Unix-time ``X-RateLimit-Reset``.
    """
    values = {name: header_value(headers, name) for name in _RATE_FIELDS}
    if all(v is None for v in values.values()):
        return None, 0
    bad = 0
    quota = window = remaining = reset = None

    policy = values["RateLimit-Policy"]
    if policy is not None:
        parsed = _parse_policy(policy)
        if parsed is None:
            bad += 1
        else:
            quota, window = parsed

    current = values["RateLimit"]
    if current is not None:
        state = _parse_ratelimit(current)
        if state is None:
            bad += 1
        else:
            remaining, reset, limit = state
            if quota is None and limit is not None:
                quota = limit

    for prefix in ("RateLimit-", "X-RateLimit-"):
        limit_v = values[prefix + "Limit"]
        if limit_v is not None:
            parsed_limit = _parse_limit_field(limit_v)
            if parsed_limit is None:
                bad += 1
            elif quota is None:
                quota, window = parsed_limit[0], window or parsed_limit[1]
        remaining_v = values[prefix + "Remaining"]
        if remaining_v is not None:
            number = _first_number(remaining_v)
            if number is None:
                bad += 1
            elif remaining is None:
                remaining = number
        reset_v = values[prefix + "Reset"]
        if reset_v is not None:
            seconds = _reset_seconds(reset_v, _epoch(now_epoch))
            if seconds is None:
                bad += 1
            elif reset is None:
                reset = seconds

    if quota is None and window is None and remaining is None and reset is None:
        return None, bad
    return RateLimit(quota, window, remaining, reset), bad


def _epoch(now_epoch: float | Callable[[], float]) -> float:
    return now_epoch() if callable(now_epoch) else now_epoch


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None and type(headers) is dict:
        # plain dicts (tests, custom transports) are case-sensitive; real ones are not
        lowered = name.lower()
        for key, candidate in headers.items():
            if isinstance(key, str) and key.lower() == lowered:
                value = candidate
                break
    if value is None or not isinstance(value, str):
        return None
    return value


def _parse_policy(text: str) -> tuple[float, float | None] | None:
    """The most restrictive ``(quota, window)`` of a ``RateLimit-Policy`` list."""
    members = sf_list(text)
    if not members:
        return None
    best: tuple[float, float | None] | None = None
    for item, params in members:
        quota = params.get("q")
        if quota is None and isinstance(item, float):
            quota = item  # draft-06 and earlier: the bare item is the quota
        if not _is_count(quota):
            return None
        window = params.get("w")
        if window is not None and not _is_positive(window):
            return None
        assert isinstance(quota, float)
        window_f = window if isinstance(window, float) else None
        if best is None or _policy_rate(quota, window_f) < _policy_rate(*best):
            best = (quota, window_f)
    return best


def _policy_rate(quota: float, window: float | None) -> float:
    return quota / window if window else math.inf


def _parse_ratelimit(text: str) -> tuple[float | None, float | None, float | None] | None:
    """``(remaining, reset, limit)`` from a ``RateLimit`` field.

    Current drafts: a list of ``"policy";r=R;t=T`` (the tightest member wins).
    Draft-07: a dictionary ``limit=L, remaining=R, reset=T``.
    """
    members = sf_list(text)
    if not members:
        return None
    if all(isinstance(item, str) and item.startswith("=") for item, _ in members):
        return _parse_ratelimit_dict(members)
    best: tuple[float | None, float | None, float | None] | None = None
    for _item, params in members:
        remaining, reset = params.get("r"), params.get("t")
        if not _is_count(remaining) or (reset is not None and not _is_count(reset)):
            return None
        assert isinstance(remaining, float)
        reset_f = reset if isinstance(reset, float) else None
        if best is None or (best[0] is not None and remaining < best[0]):
            best = (remaining, reset_f, None)
    return best


def _parse_ratelimit_dict(
    members: list[Member],
) -> tuple[float | None, float | None, float | None] | None:
    found: dict[str, float] = {}
    for item, _params in members:
        assert isinstance(item, str)
        key, _, value = item[1:].partition("=")
        number = sf_number(value)
        if key in ("limit", "remaining", "reset") and number is not None and number >= 0:
            found[key] = number
        elif key in ("limit", "remaining", "reset"):
            return None
    if "remaining" not in found and "limit" not in found:
        return None
    return found.get("remaining"), found.get("reset"), found.get("limit")


def _parse_limit_field(text: str) -> tuple[float, float | None] | None:
    """``RateLimit-Limit`` / ``X-RateLimit-Limit``: ``100`` or ``100, 100;w=60``."""
    members = sf_list(text)
    if not members:
        return None
    item, params = members[0]
    if not isinstance(item, float) or not _is_count(item):
        return None
    window = None
    for _other, other_params in members[1:]:
        w = other_params.get("w")
        if isinstance(w, float) and w > 0:
            window = w
            break
    w0 = params.get("w")
    if isinstance(w0, float) and w0 > 0:
        window = w0
    return item, window


def _reset_seconds(text: str, now_epoch: float) -> float | None:
    """Seconds until reset: a delta, or (``X-RateLimit-Reset`` of GitHub and others)
    a Unix time."""
    number = _first_number(text)
    if number is None:
        return None
    if number >= _EPOCH_THRESHOLD:
        return max(0.0, number - now_epoch)
    return number


def _first_number(text: str) -> float | None:
    members = sf_list(text)
    if not members:
        return None
    item = members[0][0]
    return item if isinstance(item, float) and _is_count(item) else None


def _is_count(value: object) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value >= 0


def _is_positive(value: object) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0
