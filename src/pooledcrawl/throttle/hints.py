"""Parsing of server rate hints. Pure functions: bad values give None, never raise.

Servers say how fast they may be crawled in three families of headers:

* ``Retry-After`` (RFC 9110): delay-seconds or an HTTP-date;
* the IETF draft ``RateLimit-Policy: "p";q=100;w=60`` and ``RateLimit: "p";r=50;t=30``
  (structured fields), plus the forms of its earlier revisions
  (``RateLimit-Limit/Remaining/Reset`` and ``RateLimit: limit=100, remaining=50, reset=30``);
* the older, still common ``X-RateLimit-Limit/Remaining/Reset``.

The controller only needs a rate, so everything is reduced to a :class:`RateHint`.
"""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = [
    "RateHint",
    "parse_rate_hints",
    "parse_retry_after",
    "retry_after_from_headers",
]

#: Longest header value we look at; anything longer is malformed for our purposes.
_MAX_VALUE = 512
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
    when = _http_date(text)
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
    value = _get(headers, "Retry-After")
    if value is None:
        return None, False
    seconds = parse_retry_after(value, _epoch(now_epoch))
    if seconds is None:
        return None, True
    if not _looks_numeric(value.strip()):
        server_now = _http_date(_get(headers, "Date") or "")
        when = _http_date(value.strip())
        if server_now is not None and when is not None:
            seconds = max(0.0, when - server_now)
    return seconds, False


def _looks_numeric(text: str) -> bool:
    return text.isascii() and text.replace(".", "", 1).isdigit()


def _http_date(text: str) -> float | None:
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


# ---- rate-limit headers --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateHint:
    """What the server said about its limit; any part may be unknown (None)."""

    quota: float | None = None
    """Requests allowed per ``window``."""
    window: float | None = None
    """Length of the quota window, in seconds."""
    remaining: float | None = None
    """Requests left before the window resets."""
    reset: float | None = None
    """Seconds until the window resets (and ``remaining`` is back to ``quota``)."""

    @property
    def rate(self) -> float | None:
        """Requests per second the server allows from now on; None if it did not say.

        What is left spread over the time left, when both are known: that uses a
        fixed window exactly. Otherwise the policy's quota over its window.
        """
        if self.remaining is not None and self.reset is not None and self.reset > 0:
            return self.remaining / self.reset
        if self.quota is not None and self.window:
            return self.quota / self.window
        return None

    @property
    def exhausted(self) -> bool:
        """Nothing left until the reset: the domain must pause for ``reset`` seconds."""
        return self.remaining is not None and self.remaining < 1 and bool(self.reset)


def parse_rate_hints(
    headers: Mapping[str, str], now_epoch: float | Callable[[], float]
) -> tuple[RateHint | None, int]:
    """``(hint, malformed)``: the server's rate-limit hint, and how many of its
    rate-limit fields could not be understood (those are ignored).

    ``now_epoch`` (wall-clock time, or a function giving it) is only read for a
    Unix-time ``X-RateLimit-Reset``.
    """
    values = {name: _get(headers, name) for name in _RATE_FIELDS}
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
    return RateHint(quota, window, remaining, reset), bad


def _epoch(now_epoch: float | Callable[[], float]) -> float:
    return now_epoch() if callable(now_epoch) else now_epoch


def _get(headers: Mapping[str, str], name: str) -> str | None:
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
    members = _sf_list(text)
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
    members = _sf_list(text)
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
    members: list[tuple[float | str | None, dict[str, float | str | bool]]],
) -> tuple[float | None, float | None, float | None] | None:
    found: dict[str, float] = {}
    for item, _params in members:
        assert isinstance(item, str)
        key, _, value = item[1:].partition("=")
        number = _number(value)
        if key in ("limit", "remaining", "reset") and number is not None and number >= 0:
            found[key] = number
        elif key in ("limit", "remaining", "reset"):
            return None
    if "remaining" not in found and "limit" not in found:
        return None
    return found.get("remaining"), found.get("reset"), found.get("limit")


def _parse_limit_field(text: str) -> tuple[float, float | None] | None:
    """``RateLimit-Limit`` / ``X-RateLimit-Limit``: ``100`` or ``100, 100;w=60``."""
    members = _sf_list(text)
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
    members = _sf_list(text)
    if not members:
        return None
    item = members[0][0]
    return item if isinstance(item, float) and _is_count(item) else None


def _is_count(value: object) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value >= 0


def _is_positive(value: object) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


# ---- a small, forgiving reader for structured-field lists (RFC 8941) ----------------

_TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9_.:/%*!#$&'+^`|~-]*")
_NUMBER = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,6})?")
_KEY = re.compile(r"[a-z*][a-z0-9_.*-]*")


def _sf_list(text: str) -> list[tuple[float | str | None, dict[str, float | str | bool]]] | None:
    """Members of a structured-field list as ``(item, params)``; None if malformed.

    Items are numbers (as float), strings or tokens. A dictionary member
    ``key=value`` comes back as the item ``"=key=value"`` so callers can tell.
    """
    if len(text) > _MAX_VALUE:
        return None
    members: list[tuple[float | str | None, dict[str, float | str | bool]]] = []
    pos, end = 0, len(text)
    while True:
        pos = _skip_ws(text, pos)
        if pos >= end:
            return members or None
        item, pos = _bare_item(text, pos)
        if item is None:
            match = _KEY.match(text, pos)
            if match is None or match.end() >= end or text[match.end()] != "=":
                return None
            value, after = _bare_item(text, match.end() + 1)
            if value is None:
                return None
            item = f"={match.group()}={value}"
            pos = after
        params: dict[str, float | str | bool] = {}
        while pos < end and text[pos] == ";":
            pos = _skip_ws(text, pos + 1)
            match = _KEY.match(text, pos)
            if match is None:
                return None
            pos = match.end()
            if pos < end and text[pos] == "=":
                value, pos = _bare_item(text, pos + 1)
                if value is None:
                    return None
                params[match.group()] = value
            else:
                params[match.group()] = True
        members.append((item, params))
        pos = _skip_ws(text, pos)
        if pos >= end:
            return members
        if text[pos] != ",":
            return None
        pos += 1


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _bare_item(text: str, pos: int) -> tuple[float | str | None, int]:
    if pos >= len(text):
        return None, pos
    char = text[pos]
    if char == '"':
        close = text.find('"', pos + 1)
        if close == -1:
            return None, pos
        return text[pos + 1 : close], close + 1
    if char == "-" or char.isdigit():
        match = _NUMBER.match(text, pos)
        if match is None:
            return None, pos
        return float(match.group()), match.end()
    match = _TOKEN.match(text, pos)
    if match is None or (match.end() < len(text) and text[match.end()] == "="):
        return None, pos  # ``key=value``: a dictionary member, not an item
    return match.group(), match.end()


def _number(text: str) -> float | None:
    match = _NUMBER.fullmatch(text.strip()) if isinstance(text, str) else None
    return float(match.group()) if match else None
