"""Browser identity: what ``impersonate`` puts on the wire, recorded by a loopback server
that reads the raw TLS ClientHello and the HTTP/2 preface (benchmarks/fingerprint.py),
next to what headless Chromium sends."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from needs import require_tool, require_transport

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo's `benchmarks`

from benchmarks.fingerprint import (
    IDENTIFYING_FIELDS,
    FingerprintServer,
    compare,
    fingerprint_chromium,
    fingerprint_pooledcrawl,
)
from pooledcrawl.http.request import Request
from pooledcrawl.profiles import load_profile
from pooledcrawl.settings import Settings
from pooledcrawl.transport.factory import make_transport

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(autouse=True)
def _curl() -> None:
    require_transport("curl")


async def test_impersonated_chrome_is_closer_to_chromium_than_httpx(tmp_path: Path) -> None:
    chromium = require_tool("chromium")
    browser = await fingerprint_chromium(tmp_path, chromium)
    curl = await fingerprint_pooledcrawl(tmp_path, transport="curl", impersonate="chrome")
    httpx = await fingerprint_pooledcrawl(tmp_path, transport="httpx", http2=True)
    as_curl, as_httpx = compare(browser, curl), compare(browser, httpx)
    assert sum(as_curl.values()) > sum(as_httpx.values()), (as_curl, as_httpx)
    # what anti-bot services key on first: the cipher suites, the TLS extensions (as a
    # set), ALPN, and the HTTP/2 SETTINGS and window: Chrome's, not Python's
    for field in ("ja4_ciphers", "alpn", "h2_settings", "h2_window_update"):
        assert as_curl[field], (field, browser.fields()[field], curl.fields()[field])
        assert not as_httpx[field], field
    assert set(as_curl) == set(IDENTIFYING_FIELDS)
    assert browser.header("user-agent").startswith("Mozilla/5.0")


async def test_a_request_overrides_the_identity_through_meta(tmp_path: Path) -> None:
    async with FingerprintServer(tmp_path).running() as server:
        settings = Settings(impersonate="chrome", ca_bundle=str(server.ca_path))
        transport = make_transport(settings)
        try:
            for meta in ({}, {"impersonate": "firefox"}, {"impersonate": ""}):
                response = await transport.fetch(Request(server.url, meta=meta))
                assert response.status == 200
        finally:
            await transport.close()
        chrome, firefox, plain = (server.fingerprint(i) for i in range(3))
    assert "Chrome/" in chrome.header("user-agent")
    assert "Firefox/" in firefox.header("user-agent")
    assert plain.header("user-agent") == Settings().user_agent  # no browser: our own
    assert chrome.fields()["ja4"] != firefox.fields()["ja4"]
    assert chrome.fields()["h2_settings"] != firefox.fields()["h2_settings"]


async def test_a_profile_sets_the_identity_and_its_headers_stay_in_browser_order(
    tmp_path: Path,
) -> None:
    (tmp_path / "browser.toml").write_text(
        '[http]\nimpersonate = "chrome"\ndefault_headers = { "Accept-Language" = "de-DE" }\n'
    )
    settings = load_profile("browser", tmp_path).effective
    assert settings.impersonate == "chrome"
    async with FingerprintServer(tmp_path).running() as server:
        settings = settings.merged({"ca_bundle": str(server.ca_path)}, source="test")
        transport = make_transport(settings)
        try:
            await transport.fetch(Request(server.url))
        finally:
            await transport.close()
        seen = server.fingerprint()
    assert seen.h2 is not None
    names = seen.h2.header_order
    # Chrome's set, in Chrome's order, the user's value in place of Chrome's and no repeat
    assert names[:3] == ["sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform"]
    assert names.index("user-agent") < names.index("accept") < names.index("accept-language")
    assert names.count("accept-language") == 1
    assert seen.header("accept-language") == "de-DE"
    assert "Chrome/" in seen.header("user-agent")
    assert "pooledcrawl" not in seen.header("user-agent")


def test_an_unknown_browser_on_the_command_line_exits_2_with_one_line(tmp_path: Path) -> None:
    spider = tmp_path / "s.py"
    spider.write_text(
        "from pooledcrawl import Spider\n"
        "class S(Spider):\n    name = 's'\n    start_urls = ['http://127.0.0.1:9/']\n"
        "    def parse(self, response):\n        yield {}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pooledcrawl", "crawl", str(spider), "-s", "impersonate=netscape"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "netscape" in lines[0] and "chrome" in lines[0], proc.stderr
