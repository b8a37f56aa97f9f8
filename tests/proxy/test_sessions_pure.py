"""Sessions, block detection, tiers and cost: the pure policies, with a fake clock."""

from __future__ import annotations

import random

import pytest

from pooledcrawl.errors import UsageError
from pooledcrawl.http.request import Request
from pooledcrawl.http.response import Response
from pooledcrawl.proxy.blocks import BlockDetector
from pooledcrawl.proxy.cost import GB, CostMeter, Price, request_head_bytes
from pooledcrawl.proxy.endpoint import parse_proxy_url
from pooledcrawl.proxy.sessions import SessionConfig, SessionPool
from pooledcrawl.proxy.tiers import TierPolicy

GATEWAY = parse_proxy_url("http://cust-42:s3cr3t-pw@gw.example.net:7777", where="t")


# ---- sessions ------------------------------------------------------------------------
def test_template_puts_the_id_in_the_username_or_the_password() -> None:
    user = SessionConfig("{username}-session-{session}")
    proxy = user.identity(GATEWAY, "abc123")
    assert proxy.username == "cust-42-session-abc123" and proxy.password == "s3cr3t-pw"
    pw = SessionConfig("{password}_session-{session}_lifetime-30m")
    proxy = pw.identity(GATEWAY, "xyz")
    assert proxy.username == "cust-42" and proxy.password == "s3cr3t-pw_session-xyz_lifetime-30m"
    assert "abc123" not in repr(user.identity(GATEWAY, "abc123"))  # repr is masked


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{username}-session", "no {session}"),
        ("{username}-{password}-{session}", "not both"),
        ("{user}-{session}", "unknown field {user}"),
    ],
)
def test_bad_templates_are_usage_errors(template: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        SessionConfig(template)


def test_sessions_are_reused_then_spread_up_to_pool_size() -> None:
    pool = SessionPool(SessionConfig("{username}-s-{session}", pool_size=3), rng=random.Random(1))
    first = pool.take(GATEWAY, "a.example", 0.0)
    pool.done(first, 0.1, blocked=False)
    again = pool.take(GATEWAY, "a.example", 0.2)
    assert again is first  # idle: sticky
    # while it is busy, new sessions open up to pool_size, then the least loaded is shared
    more = [pool.take(GATEWAY, "a.example", 0.3) for _ in range(4)]
    ids = {s.id for s in (again, *more)}
    assert len(ids) == 3 and pool.created == 3
    # per domain: another site gets its own sessions
    other = pool.take(GATEWAY, "b.example", 0.4)
    assert other.id not in ids


def test_a_block_retires_the_session_and_the_next_request_gets_a_new_id() -> None:
    pool = SessionPool(SessionConfig("{username}-s-{session}", pool_size=1), rng=random.Random(2))
    s1 = pool.take(GATEWAY, "a.example", 0.0)
    assert pool.done(s1, 1.0, blocked=True) is True
    assert s1.retired and s1.blocks == 1
    s2 = pool.take(GATEWAY, "a.example", 1.0)
    assert s2.id != s1.id and s2.proxy.username != s1.proxy.username
    assert pool.snapshot() == {"created": 2, "retired": 1, "retired_blocked": 1, "live": 1}


def test_max_age_and_max_uses_rotate_sessions() -> None:
    cfg = SessionConfig("{username}-s-{session}", pool_size=1, max_age=60, max_uses=3)
    pool = SessionPool(cfg, rng=random.Random(3))
    s = pool.take(GATEWAY, "a", 0.0)
    pool.done(s, 0.0, blocked=False)
    assert pool.take(GATEWAY, "a", 59.0) is s
    pool.done(s, 59.0, blocked=False)
    aged = pool.take(GATEWAY, "a", 60.0)
    assert aged is not s and s.retired
    for _ in range(2):
        pool.done(aged, 61.0, blocked=False)
        assert pool.take(GATEWAY, "a", 61.0) is aged
    assert pool.done(aged, 61.0, blocked=False) is True  # third use done: worn out
    assert pool.take(GATEWAY, "a", 61.0) is not aged


# ---- block detection -----------------------------------------------------------------
def _response(body: bytes, status: int = 200, url: str = "http://a/p/1") -> Response:
    return Response(url, status, {}, body, Request("http://a/p/1"))


def test_block_detector_decisions() -> None:
    detector = BlockDetector(
        ban_statuses=[403],
        ban_patterns=[r"captcha", r"access\s+denied"],
        challenge_paths=["/challenge"],
        empty_body=True,
    )
    assert detector.check(_response(b"<h1>Page 1</h1>")) is None
    assert str(detector.check(_response(b"", 403))) == "status: HTTP 403"
    assert detector.check(_response(b"<div class=CAPTCHA>")).kind == "pattern"  # type: ignore[union-attr]
    assert detector.check(_response(b"Access   Denied")).detail == r"access\s+denied"  # type: ignore[union-attr]
    assert detector.check(_response(b"x", url="http://a/challenge?from=1")).kind == "challenge"  # type: ignore[union-attr]
    assert detector.check(_response(b"x", url="http://a/challenges-list")) is None
    assert detector.check(_response(b"")).kind == "empty"  # type: ignore[union-attr]
    assert detector.check(_response(b"", 204)) is None
    # only the first scan_bytes are searched
    late = BlockDetector(ban_patterns=["captcha"], scan_bytes=100)
    assert late.check(_response(b"x" * 200 + b"captcha")) is None


def test_spider_hook_and_bad_pattern() -> None:
    detector = BlockDetector(hook=lambda r: "soft ban" if b"slow down" in r.body else None)
    assert detector.check(_response(b"please slow down")).detail == "soft ban"  # type: ignore[union-attr]
    assert detector.check(_response(b"fine")) is None
    with pytest.raises(UsageError, match="invalid regex"):
        BlockDetector(ban_patterns=["(unclosed"])


# ---- tiers ---------------------------------------------------------------------------
def test_a_blocked_domain_escalates_and_others_stay() -> None:
    tiers = TierPolicy(
        ["datacenter", "residential"], window=10, threshold=0.5, min_samples=4, streak=100
    )
    now = 0.0
    for _ in range(3):
        assert (
            tiers.observe(
                "blocked.example", tiers.choose("blocked.example", now), now, blocked=True
            )
            is None
        )
        assert (
            tiers.observe("ok.example", tiers.choose("ok.example", now), now, blocked=False) is None
        )
        now += 1
    assert tiers.observe("blocked.example", 0, now, blocked=True) == 1
    assert tiers.observe("ok.example", 0, now, blocked=False) is None
    assert tiers.current("blocked.example", now) == 1 and tiers.current("ok.example", now) == 0
    # late answers from the old tier do not move it again
    assert tiers.observe("blocked.example", 0, now, blocked=True) is None
    snap = tiers.snapshot(0.0)
    assert snap["blocked.example"] == {
        "tier": "residential",
        "history": [[0.0, "datacenter"], [3.0, "residential"]],
    }


def test_a_run_of_blocks_escalates_a_domain_with_few_requests() -> None:
    tiers = TierPolicy(["a", "b"], window=10, threshold=0.5, min_samples=10, streak=3)
    tiers.observe("d", 0, 0.0, blocked=True)
    tiers.observe("d", 0, 30.0, blocked=True)
    tiers.observe("d", 0, 31.0, blocked=False)  # a success ends the run
    tiers.observe("d", 0, 60.0, blocked=True)
    tiers.observe("d", 0, 90.0, blocked=True)
    assert tiers.observe("d", 0, 120.0, blocked=True) == 1


def test_old_outcomes_leave_the_window() -> None:
    tiers = TierPolicy(["a", "b"], window=10, threshold=0.5, min_samples=4, streak=100)
    for t in range(3):
        tiers.observe("d", 0, float(t), blocked=True)
    # 20 s later the three blocks are out of the window: one more block is 1 of 1
    for t in range(3):
        assert tiers.observe("d", 0, 20.0 + t, blocked=False) is None
    assert tiers.observe("d", 0, 23.0, blocked=True) is None


def test_probes_de_escalate_when_the_cheaper_tier_works_again() -> None:
    tiers = TierPolicy(
        ["dc", "resi", "mobile"],
        window=10,
        threshold=0.5,
        min_samples=2,
        probe_interval=30,
        probe_successes=2,
    )
    tiers.observe("d", 0, 0.0, blocked=True)
    assert tiers.observe("d", 0, 1.0, blocked=True) == 1
    assert tiers.choose("d", 10.0) == 1  # no probe before the interval
    assert tiers.choose("d", 31.0) == 0  # a probe of the cheaper tier
    assert tiers.choose("d", 31.0) == 1  # one probe at a time
    assert tiers.observe("d", 0, 32.0, blocked=True) is None  # still blocked
    assert tiers.choose("d", 62.0) == 1  # next probe in 2 x 30 s
    assert tiers.choose("d", 93.0) == 0
    assert tiers.observe("d", 0, 93.5, blocked=False) is None
    tiers.dropped("d", tiers.choose("d", 94.0), 94.0)  # a lost probe frees the probe slot
    assert tiers.choose("d", 94.0) == 0
    assert tiers.observe("d", 0, 95.0, blocked=False) == 0  # two in a row: back down
    assert tiers.current("d", 95.0) == 0 and tiers.choose("d", 200.0) == 0


# ---- cost ----------------------------------------------------------------------------
def test_request_head_bytes_counts_the_request_line_and_headers() -> None:
    head = b"GET /p/1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n"
    assert request_head_bytes("GET", "/p/1", {"Host": "a", "Accept": "*/*"}) == len(head)


def test_cost_per_profile_tier_domain_and_budget() -> None:
    meter = CostMeter(
        {"dc": Price(per_gb=0.5), "resi": Price(per_gb=8.0, per_request=0.0001)}, budget=1.0
    )
    assert meter.charge("dc", "dc", "a", GB // 1000) == pytest.approx(0.0005)
    assert meter.charge("resi", "resi", "a", GB // 1000) == pytest.approx(0.0081)
    meter.charge("resi", "resi", "b", GB // 1000)
    snap = meter.snapshot()
    assert snap["total"] == {"requests": 3, "bytes": 3 * GB // 1000, "cost": 0.0167}
    assert snap["profile"]["dc"]["bytes"] == GB // 1000
    assert snap["domain"]["a"]["cost"] == pytest.approx(0.0086)
    assert snap["budget"] == 1.0
    assert not meter.over_budget(inflight=10)  # 0.0167 + 11 x 0.0081 < 1
    assert meter.over_budget(inflight=200)
    assert not CostMeter({}).over_budget(10**9)
    with pytest.raises(UsageError):
        Price(per_gb=-1)


def test_shared_sessions_across_domains() -> None:
    pool = SessionPool(
        SessionConfig("{username}-s-{session}", pool_size=2, per_domain=False),
        rng=random.Random(4),
    )
    a = pool.take(GATEWAY, "a.example", 0.0)
    pool.done(a, 0.1, blocked=False)
    assert pool.take(GATEWAY, "b.example", 0.2) is a  # one set for every site
    assert pool.retire(a) is True and pool.retire(a) is False
    assert a.blocks == 2 and pool.take(GATEWAY, "a.example", 0.3) is not a
