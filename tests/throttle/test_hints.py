"""Parsing of Retry-After and rate-limit headers: right values, and never an exception."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from pooledcrawl.throttle.hints import (
    RateHint,
    parse_rate_hints,
    parse_retry_after,
    retry_after_from_headers,
)

NOW = 1_700_000_000.0


# ---- Retry-After ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-1", None),
        ("soon", None),
        ("²", None),
    ],
)
def test_retry_after_seconds(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_retry_after_http_date_against_the_date_header() -> None:
    headers = {
        "Retry-After": "Fri, 31 Dec 1999 23:59:59 GMT",
        "Date": "Fri, 31 Dec 1999 23:59:29 GMT",
    }
    assert retry_after_from_headers(headers, NOW) == (30.0, False)


def test_retry_after_http_date_without_a_date_header_uses_the_clock() -> None:
    seconds, bad = retry_after_from_headers({"Retry-After": "Fri, 31 Dec 1999 23:59:59 GMT"}, NOW)
    assert seconds == 0.0 and not bad  # in the past: no wait
    seconds, bad = retry_after_from_headers({"retry-after": "Wed, 15 Nov 2023 22:14:20 GMT"}, NOW)
    assert seconds == pytest.approx(1_700_086_460 - NOW) and not bad


def test_retry_after_absent_or_malformed() -> None:
    assert retry_after_from_headers({}, NOW) == (None, False)
    assert retry_after_from_headers({"Retry-After": "later"}, NOW) == (None, True)


# ---- RateLimit-Policy / RateLimit (IETF draft) ------------------------------------------


def test_ietf_policy_and_current_state() -> None:
    headers = CIMultiDict(
        {"RateLimit-Policy": '"default";q=100;w=60', "RateLimit": '"default";r=50;t=30'}
    )
    hint, bad = parse_rate_hints(headers, NOW)
    assert bad == 0
    assert hint == RateHint(quota=100, window=60, remaining=50, reset=30)
    assert hint.rate == pytest.approx(50 / 30)


def test_ietf_policy_alone_gives_quota_over_window() -> None:
    hint, _ = parse_rate_hints(
        {"RateLimit-Policy": '"burst";q=100;w=10, "day";q=1000;w=86400'}, NOW
    )
    assert hint is not None and hint.rate == pytest.approx(1000 / 86400)  # the tighter one


def test_ietf_remaining_zero_is_exhausted() -> None:
    hint, _ = parse_rate_hints({"RateLimit": '"default";r=0;t=12'}, NOW)
    assert hint is not None and hint.exhausted and hint.reset == 12


def test_draft_07_dictionary_form() -> None:
    hint, bad = parse_rate_hints({"RateLimit": "limit=100, remaining=40, reset=20"}, NOW)
    assert bad == 0 and hint == RateHint(quota=100, remaining=40, reset=20)
    assert hint.rate == 2.0


def test_early_draft_separate_fields() -> None:
    headers = {
        "RateLimit-Limit": "10, 10;w=1, 1000;w=3600",
        "RateLimit-Remaining": "9",
        "RateLimit-Reset": "1",
    }
    hint, bad = parse_rate_hints(headers, NOW)
    assert bad == 0 and hint == RateHint(quota=10, window=1, remaining=9, reset=1)


# ---- X-RateLimit-* --------------------------------------------------------------------


def test_x_ratelimit_with_a_unix_time_reset() -> None:
    headers = {
        "X-RateLimit-Limit": "5000",
        "X-RateLimit-Remaining": "4990",
        "X-RateLimit-Reset": str(int(NOW) + 3600),
    }
    hint, bad = parse_rate_hints(headers, NOW)
    assert bad == 0 and hint is not None
    assert hint.reset == 3600 and hint.rate == pytest.approx(4990 / 3600)


def test_x_ratelimit_with_a_delta_reset() -> None:
    hint, _ = parse_rate_hints({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "7"}, NOW)
    assert hint is not None and hint.exhausted and hint.reset == 7


def test_no_hints() -> None:
    assert parse_rate_hints({"Content-Type": "text/html"}, NOW) == (None, 0)


@pytest.mark.parametrize(
    "headers",
    [
        {"RateLimit-Policy": "q=100"},
        {"RateLimit-Policy": '"p";q=-1;w=60'},
        {"RateLimit-Policy": '"p";q=100;w=0'},
        {"RateLimit": '"p";t=30'},
        {"RateLimit": '"unterminated;r=5'},
        {"RateLimit": "limit=abc"},
        {"X-RateLimit-Limit": "lots"},
        {"X-RateLimit-Remaining": "-3"},
        {"X-RateLimit-Reset": "tomorrow"},
        {"RateLimit-Policy": "x" * 600},
    ],
)
def test_malformed_fields_are_ignored_and_counted(headers: dict[str, str]) -> None:
    hint, bad = parse_rate_hints(headers, NOW)
    assert bad == 1
    assert hint is None


def test_a_bad_field_does_not_spoil_the_good_ones() -> None:
    hint, bad = parse_rate_hints({"RateLimit-Policy": "??", "X-RateLimit-Limit": "60"}, NOW)
    assert bad == 1 and hint is not None and hint.quota == 60


# ---- properties -----------------------------------------------------------------------

_FIELDS = [
    "Retry-After",
    "Date",
    "RateLimit-Policy",
    "RateLimit",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
]
_ALPHABET = st.sampled_from(list("²٣") + list('0123456789.-;=,"qwrt lmitdefaul\t:/GMTMonFri'))
_VALUES = st.one_of(st.text(max_size=80), st.text(alphabet=_ALPHABET, max_size=80))


@given(st.dictionaries(st.sampled_from(_FIELDS), _VALUES, max_size=6), st.floats(allow_nan=False))
def test_header_parsing_never_raises(headers: dict[str, str], now: float) -> None:
    hint, bad = parse_rate_hints(headers, now)
    assert bad >= 0
    if hint is not None:
        rate = hint.rate
        assert rate is None or rate >= 0
    seconds, _ = retry_after_from_headers(headers, now)
    assert seconds is None or seconds >= 0


@given(
    quota=st.integers(min_value=0, max_value=10**9),
    window=st.integers(min_value=1, max_value=10**6),
    remaining=st.integers(min_value=0, max_value=10**9),
    reset=st.integers(min_value=1, max_value=10**6),
    name=st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True),
)
def test_well_formed_ietf_fields_round_trip(
    quota: int, window: int, remaining: int, reset: int, name: str
) -> None:
    headers = {
        "RateLimit-Policy": f'"{name}";q={quota};w={window}',
        "RateLimit": f'"{name}";r={remaining};t={reset}',
    }
    hint, bad = parse_rate_hints(headers, NOW)
    assert bad == 0
    assert hint == RateHint(quota=quota, window=window, remaining=remaining, reset=reset)
