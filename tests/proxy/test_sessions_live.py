"""Sessions, blocks, tiers and cost against real proxies on loopback: squid as a rotating
gateway with sticky sessions, tinyproxy as one datacenter exit, and a site that bans by
client address (see benchmarks/_proxies.py)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo's `benchmarks`

from benchmarks._proxies import (
    BanningSite,
    captcha_items,
    exits,
    fake_auth_helper,
    serve_site,
    squid_gateway,
    tinyproxy,
)
from pooledcrawl import Engine, Request, Response, Settings, Spider
from pooledcrawl.proxy.endpoint import ProxyConfig, parse_proxy_url
from pooledcrawl.proxy.sessions import SessionConfig

pytestmark = pytest.mark.timeout(180)

USER = "cust-4711"
SECRET = "Kp9-sess10n-S3cr3t-q2"  # distinctive: grepped for in every output
ENV = {"PCS_USER": USER, "PCS_PASS": SECRET}

SPIDER = """
from pooledcrawl import Request, Spider

class Pages(Spider):
    name = "pages"

    async def start(self):
        for url in self.starts.split(","):
            yield Request(url)

    def parse(self, response):
        yield {"url": response.url, "title": response.css("title::text").get()}
        yield from response.follow_all(css="a")
"""


@pytest.fixture(autouse=True)
def _tools() -> None:
    missing = [tool for tool in ("squid", "tinyproxy") if shutil.which(tool) is None]
    try:
        fake_auth_helper()
    except RuntimeError:
        missing.append("basic_fake_auth")
    if missing:
        message = f"{', '.join(missing)} not installed"
        if os.environ.get("PCRAWL_REQUIRE_SERVICES"):
            pytest.fail(message + " and PCRAWL_REQUIRE_SERVICES is set")
        pytest.skip(message)


async def run_cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pooledcrawl",
        *args,
        env={**os.environ, **ENV},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 150)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def read_items(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_text().splitlines() if line]


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text
        assert f"{USER}-session-" not in text  # the session username holds the account
        assert f"{USER}:" not in text


def profile(
    directory: Path,
    name: str,
    proxy_port: int | None,
    *,
    base: str = "residential",
    session: bool = True,
    price: float = 8.0,
    extra: str = "",
) -> None:
    directory.mkdir(exist_ok=True)
    text = f'extends = "{base}"\n[concurrency]\nglobal = 24\nstart = 8\nmax = 24\n'
    text += '[proxy]\nban_patterns = ["captcha"]\n'
    if proxy_port is not None:
        text += f'url = "http://${{PCS_USER}}:${{PCS_PASS}}@127.0.0.1:{proxy_port}"\n'
    if session:
        text += '[session]\ntemplate = "{username}-session-{session}"\npool_size = 8\n'
    text += f"[cost]\nprice_per_gb = {price}\n" + extra
    (directory / f"{name}.toml").write_text(text, encoding="utf-8")


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "spider.py").write_text(SPIDER, encoding="utf-8")
    yield tmp_path


async def test_soft_bans_through_a_sticky_session_gateway_lose_no_page(workdir: Path) -> None:
    """The issue's first target, small: a site that soft-bans each exit after a burst,
    crawled through squid with sessions: every page, no CAPTCHA item, no suspicious
    cookie, the gateway never benched; credentials in no output."""
    site = BanningSite(pages=300, limit=20, window=2.0, ban_for=3.0)
    async with serve_site(site) as base, squid_gateway(exits(16)) as squid:
        profile(workdir / "profiles", "resi", squid.port)
        code, out, err = await run_cli(
            "crawl", "spider.py", "-a", f"starts={base}/p/0.html",
            "--profile", "resi", "--profiles-dir", "profiles",
            "-O", "items.jsonl", "--stats", "stats.json", "--report", "report.html",
            "--log-level", "DEBUG",
            cwd=workdir,
        )  # fmt: skip
        show = await run_cli("profiles", "show", "resi", "--profiles-dir", "profiles", cwd=workdir)
    assert code == 0, err
    items = read_items(workdir / "items.jsonl")
    stats_text = (workdir / "stats.json").read_text()
    stats = orjson.loads(stats_text)
    assert len(items) == 300 and len({i["url"] for i in items}) == 300
    assert captcha_items(items) == 0
    assert site.captchas > 0 and site.bans > 0  # the site did ban: the test means something
    assert stats["blocks"]["total"] == site.captchas
    assert stats["blocks"]["kinds"] == {"pattern": site.captchas}
    assert stats["blocks"]["retried"] == site.captchas  # each on a fresh session
    assert stats["blocks"]["sessions"]["resi"]["retired_blocked"] >= site.bans
    assert stats["failed"] == 0
    gateway = stats["proxies"][f"http://127.0.0.1:{squid.port}"]
    assert gateway["state"] == "healthy" and gateway["bans"] == gateway["failures"] == 0
    # cookies belong to the session, and a session leaves from one IP
    assert site.suspicious == 0
    assert site.cookie_addresses and all(len(a) == 1 for a in site.cookie_addresses.values())
    assert len(site.by_address) > 4  # many exits were used
    cost = stats["cost"]
    assert cost["profile"]["resi"]["bytes"] > 300 * 300  # headers and bodies, both ways
    assert cost["total"]["cost"] == pytest.approx(cost["total"]["bytes"] / 1e9 * 8.0, rel=1e-3)
    report = (workdir / "report.html").read_text()
    assert "Blocks" in report and "Cost" in report
    assert show[0] == 0
    assert 'template = "{username}-session-{session}"' in show[1]
    assert_no_secret(out, err, stats_text, report, show[1], show[2],
                     (workdir / "items.jsonl").read_text())  # fmt: skip


class Pages(Spider):
    def __init__(self, start: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.start_url = start
        self.titles: list[str] = []

    async def start(self) -> Any:
        yield Request(self.start_url)

    def parse(self, response: Response) -> Iterator[Any]:
        self.titles.append(response.css("title::text").get() or "")
        yield from response.follow_all(css="a")


async def test_a_403_through_a_session_gateway_rotates_the_session_not_the_gateway() -> None:
    site = BanningSite(pages=200, limit=15, window=2.0, ban_for=3.0, hard=True)
    async with serve_site(site) as base, squid_gateway(exits(12)) as squid:
        proxy = parse_proxy_url(squid.url(f"{USER}:{SECRET}"), where="test")
        session = SessionConfig("{username}-session-{session}", pool_size=6)
        config = ProxyConfig("rotating", (proxy,), "test", session=session)
        settings = Settings(concurrency=24, domain_concurrency=12, proxy_down_timeout=5)
        spider = Pages(f"{base}/p/0.html")
        stats = await Engine(spider, settings, proxies=config).run()
    assert site.bans > 0 and stats.status_counts[403] > 0
    assert len(spider.titles) == 200 and stats.failed == 0
    assert stats.finish_reason == "finished"
    gateway = stats.extra["proxies"][f"http://127.0.0.1:{squid.port}"]
    assert gateway["state"] == "healthy" and gateway["bans"] == 0
    assert stats.extra["blocks"]["kinds"] == {"status": stats.status_counts[403]}
    assert site.suspicious == 0


async def test_a_blocked_domain_escalates_to_the_next_tier_and_another_stays(
    workdir: Path,
) -> None:
    """``--profile dc,resi``: tinyproxy (one datacenter exit) is blocked by one site and
    not by the other; squid with sessions is the residential tier."""
    datacenter = "127.0.0.2"
    blocking = BanningSite(pages=150, limit=10_000, blocked=frozenset({datacenter}))
    open_site = BanningSite(pages=150, limit=10_000)
    async with (
        serve_site(blocking) as blocking_base,
        serve_site(open_site) as open_base,
        tinyproxy(datacenter) as dc_proxy,
        squid_gateway(exits(8)) as squid,
    ):
        profile(workdir / "profiles", "dc", None, base="datacenter", session=False, price=0.5,
                extra="")  # fmt: skip
        (workdir / "profiles" / "dc.toml").write_text(
            (workdir / "profiles" / "dc.toml")
            .read_text()
            .replace("[proxy]\n", f'[proxy]\nurl = "http://127.0.0.1:{dc_proxy.port}"\n')
        )
        profile(workdir / "profiles", "resi", squid.port, price=8.0)
        code, out, err = await run_cli(
            "crawl", "spider.py", "-a", f"starts={blocking_base}/p/0.html,{open_base}/p/0.html",
            "--profile", "dc,resi", "--profiles-dir", "profiles",
            "-O", "items.jsonl", "--stats", "stats.json",
            cwd=workdir,
        )  # fmt: skip
    assert code == 0, err
    items = read_items(workdir / "items.jsonl")
    stats_text = (workdir / "stats.json").read_text()
    stats = orjson.loads(stats_text)
    assert len({i["url"] for i in items}) == 300 and captcha_items(items) == 0
    blocked_host, open_host = blocking_base[7:], open_base[7:]
    tiers = stats["tiers"]["domains"]
    assert tiers[blocked_host]["tier"] == "resi"
    assert [name for _, name in tiers[blocked_host]["history"]] == ["dc", "resi"]
    assert tiers[open_host]["tier"] == "dc" and len(tiers[open_host]["history"]) == 1
    # the open site was only ever fetched from the datacenter exit
    assert set(open_site.by_address) == {datacenter}
    assert blocking.by_address[datacenter] >= 5  # it was tried on the cheap tier first
    assert set(blocking.by_address) - {datacenter}  # then from residential exits
    cost = stats["cost"]
    assert cost["tier"]["0:dc"]["bytes"] > 0 and cost["tier"]["1:resi"]["bytes"] > 0
    assert cost["profile"]["dc"]["cost"] > 0 and cost["profile"]["resi"]["cost"] > 0
    assert cost["domain"][open_host]["bytes"] > 0
    assert stats["blocks"]["domain"] == {blocked_host: blocking.captchas}
    assert_no_secret(out, err, stats_text)


async def test_budget_stops_cleanly_and_a_jobdir_rerun_resumes(workdir: Path) -> None:
    site = BanningSite(pages=400, limit=10_000)
    async with serve_site(site) as base, squid_gateway(exits(4)) as squid:
        # priced so the 400 pages cost about 0.4: a budget of 0.15 stops early
        profile(workdir / "profiles", "resi", squid.port, price=1000.0)
        args = (
            "crawl", "spider.py", "-a", f"starts={base}/p/0.html",
            "--profile", "resi", "--profiles-dir", "profiles",
            "-o", "items.jsonl", "--jobdir", "job",
        )  # fmt: skip
        code, _, err = await run_cli(*args, "--budget", "0.15", "--stats", "s1.json", cwd=workdir)
        assert code == 0, err
        first = orjson.loads((workdir / "s1.json").read_text())
        first_items = read_items(workdir / "items.jsonl")
        code, _, err = await run_cli(*args, "--stats", "s2.json", cwd=workdir)
        assert code == 0, err
    assert first["finish_reason"].startswith("budget reached")
    spent = first["cost"]["total"]["cost"]
    # within 2% of the budget (the bar): the stop is decided on a projection,
    # and a page dearer than the dearest so far plus 10% can land just past it
    assert 0.15 * 0.9 <= spent <= 0.15 * 1.02
    assert 0 < len(first_items) < 400
    items = read_items(workdir / "items.jsonl")
    urls = [i["url"] for i in items]
    assert len(set(urls)) == 400 and len(urls) == 400  # nothing lost, nothing twice
