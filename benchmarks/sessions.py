"""Sessions, tiers and budget against real proxies: the targets of issue #19.

    python -m benchmarks.sessions                 # all three scenarios
    python -m benchmarks.sessions --only sessions --pages 5000 --exits 64

- ``sessions``: a site that soft-bans each exit address after a burst (60 requests
  in 10 s, banned 30 s, a CAPTCHA page served with a 200), crawled through squid
  (a rotating gateway with sticky sessions over ``--exits`` loopback addresses).
  Target: every page, 0 CAPTCHA items, every block retried on a fresh session,
  the gateway never benched.
- ``tiers``: ``--profile dc,resi``; ``dc`` is tinyproxy with one exit, which the
  banning site soon bans, ``resi`` the squid gateway; a second site never bans.
  Target: the banning domain escalates within 30 s, both tiers' bytes and cost
  are in the stats, the other domain stays on ``dc``.
- ``budget``: ``--budget`` stops within 2% under the budget, and a ``--jobdir``
  rerun finishes with every page exactly once.

Every crawl is the real CLI in a subprocess; the sites run in this process, the
proxies are squid and tinyproxy processes, all on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson

from benchmarks._proxies import (
    BanningSite,
    captcha_items,
    exits,
    serve_site,
    squid_gateway,
    tinyproxy,
)

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

ENV = {"BENCH_PROXY_USER": "customer-bench42", "BENCH_PROXY_PASS": "bench-S3cret-pw"}
RESI_PRICE = 8.0  # per GB, a typical residential rate
DC_PRICE = 0.5


def write_profiles(directory: Path, squid_port: int, dc_port: int | None) -> None:
    directory.mkdir(exist_ok=True)
    (directory / "resi.toml").write_text(
        'extends = "residential"\n'
        "[proxy]\n"
        f'url = "http://${{BENCH_PROXY_USER}}:${{BENCH_PROXY_PASS}}@127.0.0.1:{squid_port}"\n'
        'ban_patterns = ["captcha"]\n'
        '[session]\ntemplate = "{username}-session-{session}"\npool_size = 50\n'
        f"[cost]\nprice_per_gb = {RESI_PRICE}\n",
        encoding="utf-8",
    )
    if dc_port is not None:
        (directory / "dc.toml").write_text(
            'extends = "datacenter"\n'
            f'[proxy]\nurl = "http://127.0.0.1:{dc_port}"\nban_patterns = ["captcha"]\n'
            f"[cost]\nprice_per_gb = {DC_PRICE}\n",
            encoding="utf-8",
        )


async def crawl(workdir: Path, *args: str) -> tuple[int, float, str]:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pooledcrawl",
        "crawl",
        "spider.py",
        *args,
        env={**os.environ, **ENV},
        cwd=workdir,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, time.perf_counter() - started, err.decode()


def items_of(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_text().splitlines() if line]


def stats_of(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(path.read_text())
    return data


async def scenario_sessions(workdir: Path, opts: argparse.Namespace) -> dict[str, Any]:
    site = BanningSite(pages=opts.pages, limit=60, window=10.0, ban_for=30.0)
    async with serve_site(site) as base, squid_gateway(exits(opts.exits)) as squid:
        write_profiles(workdir / "profiles", squid.port, None)
        code, seconds, err = await crawl(
            workdir,
            "-a",
            f"starts={base}/p/0.html",
            "--profile",
            "resi",
            "--profiles-dir",
            "profiles",
            "-O",
            "sessions.jsonl",
            "--stats",
            "sessions.json",
        )
    items = items_of(workdir / "sessions.jsonl")
    stats = stats_of(workdir / "sessions.json")
    blocks = stats.get("blocks", {})
    gateway = next(iter(stats.get("proxies", {}).values()), {})
    secret_leaked = any(v in err or v in str(stats) for v in ENV.values())
    return {
        "exit_code": code,
        "seconds": round(seconds, 1),
        "pages": len({i["url"] for i in items}),
        "of": opts.pages,
        "captcha_items": captcha_items(items),
        "site_captchas_served": site.captchas,
        "site_bans": site.bans,
        "suspicious_cookies": site.suspicious,
        "blocks": blocks.get("total"),
        "blocks_retried": blocks.get("retried"),
        "sessions_retired_blocked": blocks.get("sessions", {})
        .get("resi", {})
        .get("retired_blocked"),
        "failed": stats.get("failed"),
        "gateway": {k: gateway.get(k) for k in ("state", "bans", "failures")},
        "exits_used": len(site.by_address),
        "credentials_in_output": secret_leaked,
    }


async def scenario_tiers(workdir: Path, opts: argparse.Namespace) -> dict[str, Any]:
    datacenter = "127.0.0.2"
    banning = BanningSite(pages=opts.pages, limit=60, window=10.0, ban_for=30.0)
    calm = BanningSite(pages=min(opts.pages, 1000), limit=10**9)
    async with (
        serve_site(banning) as banning_base,
        serve_site(calm) as calm_base,
        tinyproxy(datacenter) as dc,
        squid_gateway(exits(opts.exits)) as squid,
    ):
        write_profiles(workdir / "profiles", squid.port, dc.port)
        code, seconds, _ = await crawl(
            workdir,
            "-a",
            f"starts={banning_base}/p/0.html,{calm_base}/p/0.html",
            "--profile",
            "dc,resi",
            "--profiles-dir",
            "profiles",
            "-O",
            "tiers.jsonl",
            "--stats",
            "tiers.json",
        )
    items = items_of(workdir / "tiers.jsonl")
    stats = stats_of(workdir / "tiers.json")
    domains = stats.get("tiers", {}).get("domains", {})
    banning_host, calm_host = banning_base[7:], calm_base[7:]
    history = domains.get(banning_host, {}).get("history", [])
    escalated_at = next((t for t, name in history if name == "resi"), None)
    cost = stats.get("cost", {})
    return {
        "exit_code": code,
        "seconds": round(seconds, 1),
        "pages": len({i["url"] for i in items}),
        "of": banning.pages + calm.pages,
        "captcha_items": captcha_items(items),
        "banning_domain_escalated_at_s": escalated_at,
        "banning_domain_tier": domains.get(banning_host, {}).get("tier"),
        "calm_domain_tier": domains.get(calm_host, {}).get("tier"),
        "calm_domain_changes": len(domains.get(calm_host, {}).get("history", [])) - 1,
        "cost_per_tier": cost.get("tier"),
    }


async def scenario_budget(workdir: Path, opts: argparse.Namespace) -> dict[str, Any]:
    site = BanningSite(pages=opts.pages, limit=10**9)
    async with serve_site(site) as base, squid_gateway(exits(8)) as squid:
        write_profiles(workdir / "profiles", squid.port, None)
        args = [
            "-a",
            f"starts={base}/p/0.html",
            "--profile",
            "resi",
            "--profiles-dir",
            "profiles",
            "-o",
            "budget.jsonl",
            "--jobdir",
            "job",
        ]
        # the full crawl costs about pages x 1.3 KB x price: budget half of it
        budget = opts.pages * 1300 / 1e9 * RESI_PRICE / 2
        code1, _, _ = await crawl(workdir, *args, "--budget", f"{budget:.8f}", "--stats", "b1.json")
        first = stats_of(workdir / "b1.json")
        first_items = len(items_of(workdir / "budget.jsonl"))
        code2, _, _ = await crawl(workdir, *args, "--stats", "b2.json")
    items = items_of(workdir / "budget.jsonl")
    urls = [i["url"] for i in items]
    spent = first.get("cost", {}).get("total", {}).get("cost", 0.0)
    return {
        "exit_codes": [code1, code2],
        "budget": round(budget, 8),
        "spent": spent,
        "spent_share_of_budget": round(spent / budget, 4),
        "finish_reason": first.get("finish_reason"),
        "pages_first_run": first_items,
        "pages_after_resume": len(set(urls)),
        "duplicates": len(urls) - len(set(urls)),
        "of": opts.pages,
    }


SCENARIOS: dict[str, Callable[[Path, argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]]] = {
    "sessions": scenario_sessions,
    "tiers": scenario_tiers,
    "budget": scenario_budget,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sessions", description=__doc__)
    parser.add_argument("--pages", type=int, default=5000)
    parser.add_argument("--exits", type=int, default=64, help="squid exit addresses")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="sessions,tiers,budget")
    opts = parser.parse_args(argv)
    for tool in ("squid", "tinyproxy"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed", file=sys.stderr)
            return 2
    results: dict[str, Any] = {}
    for name in opts.only.split(","):
        workdir = Path(tempfile.mkdtemp(prefix=f"pcrawl-bench-{name}-"))
        try:
            (workdir / "spider.py").write_text(SPIDER, encoding="utf-8")
            results[name] = asyncio.run(SCENARIOS[name](workdir, opts))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        print(f"{name}: {orjson.dumps(results[name]).decode()}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
