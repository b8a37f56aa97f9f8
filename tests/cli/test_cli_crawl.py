"""``pooledcrawl crawl`` as a real subprocess: user errors, outputs, stats, Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from needs import require_tool, require_transport
from sites import link_graph_app, link_graph_page, serve

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo's `benchmarks`

from benchmarks.dnsmasq import dnsmasq
from pooledcrawl.cli import main

pytestmark = pytest.mark.timeout(120)

GRAPH_SPIDER = '''
from pooledcrawl import Request, Spider


class Graph(Spider):
    """Follows a link graph from ``base``/p/0.html; ``per_page`` items a page."""

    name = "graph"
    base = ""
    per_page = "1"

    async def start(self):
        yield Request(self.base + "/p/0.html")

    def parse(self, response):
        for k in range(int(self.per_page)):
            yield {"url": response.url, "k": k, "title": response.css("title::text").get()}
        yield from response.follow_all(css="a")
'''

STABLE_STATS_KEYS = {
    "elapsed_s",
    "requests",
    "pages",
    "items",
    "status_counts",
    "errors",
    "retries",
    "failed",
    "duplicates_filtered",
    "max_inflight",
}


@dataclass
class Result:
    returncode: int
    stdout: bytes
    stderr: str


PYTHONPATH = os.environ.get("PYTHONPATH", "")


async def pooledcrawl(*args: str, cwd: Path) -> Result:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pooledcrawl",
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # the spider files first, then the tree under test if PYTHONPATH names one
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(cwd), PYTHONPATH]))},
    )
    try:
        async with asyncio.timeout(60):
            stdout, stderr = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, stdout, stderr.decode())


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def read_jsonl(path: Path | bytes) -> list[dict[str, object]]:
    data = path if isinstance(path, bytes) else path.read_bytes()
    assert not data or data.endswith(b"\n"), "the feed must end on a line boundary"
    return [orjson.loads(line) for line in data.splitlines()]


# ---- user errors: exit code 2, one line, no traceback ------------------------------------

ONE = """
from pooledcrawl import Spider

class One(Spider):
    start_urls = ["http://127.0.0.1:9/"]
"""
TWO = ONE + "\nclass Two(One):\n    pass\n"

USER_ERRORS: dict[str, tuple[list[str], str]] = {
    "missing spider file": (["crawl", "nope.py"], "spider file not found: nope.py"),
    "syntax error": (["crawl", "syntax.py"], "syntax.py:2: syntax error"),
    "no Spider subclass": (["crawl", "empty.py"], "no Spider subclass found"),
    "two subclasses": (["crawl", "two.py"], "several Spider subclasses (One, Two)"),
    "unknown class name": (["crawl", "one.py:Three"], "no Spider subclass named 'Three'"),
    "bad -s value": (["crawl", "one.py", "-s", "concurrency=abc"], "setting concurrency"),
    "unknown -s key": (
        ["crawl", "one.py", "-s", "concurency=3"],
        "unknown setting 'concurency' (did you mean 'concurrency'?)",
    ),
    "unknown nested -s key": (
        ["crawl", "one.py", "-s", "postgres.pool_sise=3"],
        "unknown setting 'postgres.pool_sise' (did you mean 'postgres.pool_size'?)",
    ),
    "bad -a": (["crawl", "one.py", "-a", "foo"], "-a expects KEY=VALUE, got 'foo'"),
    "bad --concurrency": (["crawl", "one.py", "--concurrency", "x"], "--concurrency"),
    "unknown flag": (["crawl", "one.py", "--bogus"], "unrecognized arguments: --bogus"),
}

# More user errors, checked in-process through main() (a subprocess each would be slow).
MORE_USER_ERRORS: dict[str, tuple[list[str], str]] = {
    "import raises": (["crawl", "raises.py"], "RuntimeError: first line second line"),
    "missing module": (["crawl", "no_such_mod_t:X"], "cannot import spider module"),
    "-s out of range": (["crawl", "one.py", "-s", "concurrency=0"], "must be > 0"),
    "-s without =": (["crawl", "one.py", "-s", "concurrency"], "-s expects KEY=VALUE"),
    "-s old flat name out of range": (
        ["crawl", "one.py", "-s", "pg_pool_size=0"],
        "command line: setting pg_pool_size: must be > 0",
    ),
    "-s unknown key in a nested table": (
        ["crawl", "one.py", "-s", 'postgres={"pool_sise": 3}'],
        "unknown setting 'postgres.pool_sise'",
    ),
    "-s start above max": (
        ["crawl", "one.py", "-s", "domain_concurrency=8", "-s", "domain_concurrency_max=4"],
        "is above domain_concurrency_max",
    ),
    "-s unknown politeness_key": (
        ["crawl", "one.py", "-s", "politeness_key=street"],
        "choose host, domain or ip",
    ),
    "zero --concurrency": (["crawl", "one.py", "--concurrency", "0"], "must be > 0"),
    "bad --max-pages": (["crawl", "one.py", "--max-pages", "-1"], "--max-pages"),
    "bad --log-level": (["crawl", "one.py", "--log-level", "LOUD"], "LOUD"),
    "unsupported output": (["crawl", "one.py", "-o", "items.xml"], "items.xml"),
    "output directory missing": (
        ["crawl", "one.py", "-o", "no/such/dir/items.jsonl"],
        "no/such/dir/items.jsonl",
    ),
    "no command": ([], "COMMAND"),
    "unknown command": (["crawlx"], "crawlx"),
}


def spider_files(where: Path) -> None:
    write(where / "one.py", ONE)
    write(where / "two.py", TWO)
    write(where / "syntax.py", "from pooledcrawl import Spider\nclass X(Spider:\n    pass\n")
    write(where / "empty.py", "x = 1\n")
    write(where / "raises.py", "raise RuntimeError('first line\\nsecond line')\n")


def usage_error_problem(name: str, code: int, stderr: str, expected: str) -> str | None:
    lines = stderr.splitlines()
    if (
        code != 2
        or len(lines) != 1
        or "Traceback" in stderr
        or not lines[0].startswith("pooledcrawl: error: ")
        or expected not in lines[0]
    ):
        return f"{name}: exit {code}, stderr {stderr!r}"
    return None


async def test_user_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    spider_files(tmp_path)
    limit = asyncio.Semaphore(4)  # the cases run side by side: each is a Python start-up

    async def run(args: list[str]) -> Result:
        async with limit:
            return await pooledcrawl(*args, cwd=tmp_path)

    names = list(USER_ERRORS)
    results = await asyncio.gather(*(run(USER_ERRORS[name][0]) for name in names))
    problems = [
        usage_error_problem(name, result.returncode, result.stderr, USER_ERRORS[name][1])
        for name, result in zip(names, results, strict=True)
    ]
    assert not any(problems), "\n".join(filter(None, problems))


@pytest.mark.parametrize("name", list(MORE_USER_ERRORS))
def test_more_user_errors_in_process(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spider_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    args, expected = MORE_USER_ERRORS[name]
    code = main(args)
    problem = usage_error_problem(name, code, capsys.readouterr().err, expected)
    assert problem is None, problem
    assert not (tmp_path / "items.xml").exists()


# ---- outputs and stats -------------------------------------------------------------------


async def test_outputs_append_overwrite_stdout_and_stats(tmp_path: Path) -> None:
    write(tmp_path / "graph.py", GRAPH_SPIDER)
    out, stats_path = tmp_path / "items.jsonl", tmp_path / "stats.json"
    out.write_bytes(b'{"already": "there"}\n')
    async with serve(link_graph_app(30)) as base:
        common = ["crawl", "graph.py", "-a", f"base={base}", "--concurrency", "4"]
        first = await pooledcrawl(
            *common, "-o", "items.jsonl", "--stats", "stats.json", cwd=tmp_path
        )
        assert first.returncode == 0, first.stderr
        stats = orjson.loads(stats_path.read_bytes())
        # -o appends: the old line stays
        second = await pooledcrawl(*common, "-o", "items.jsonl", "-a", "per_page=2", cwd=tmp_path)
        assert second.returncode == 0, second.stderr
        appended = read_jsonl(out)
        # -O overwrites
        third = await pooledcrawl(*common, "-O", "items.jsonl", cwd=tmp_path)
        assert third.returncode == 0, third.stderr
        overwritten = read_jsonl(out)
        # -o - writes the items, and only them, to stdout
        to_stdout = await pooledcrawl(*common, "-o", "-", cwd=tmp_path)
        assert to_stdout.returncode == 0, to_stdout.stderr

    assert appended[0] == {"already": "there"}
    assert len(appended) == 1 + 30 + 60
    assert len(overwritten) == 30
    assert {item["url"] for item in overwritten} == {f"{base}/p/{i}.html" for i in range(30)}
    stdout_items = read_jsonl(to_stdout.stdout)
    assert len(stdout_items) == 30 and all(set(i) == {"url", "k", "title"} for i in stdout_items)

    assert set(stats) >= STABLE_STATS_KEYS
    assert stats["items"] == 30 and stats["pages"] == 30 and stats["requests"] == 30
    assert stats["status_counts"] == {"200": 30}
    assert stats["errors"] == {} and stats["retries"] == 0 and stats["failed"] == 0
    assert stats["duplicates_filtered"] > 0
    assert 1 <= stats["max_inflight"] <= 4
    assert isinstance(stats["elapsed_s"], float) and stats["elapsed_s"] > 0
    # the summary goes to stderr
    assert "pages 30" in first.stderr and "items 30" in first.stderr
    assert "status 200:30" in first.stderr


@pytest.mark.parametrize("transport", ["httpx", "curl"])
async def test_dns_servers_reach_every_transport(tmp_path: Path, transport: str) -> None:
    # only this dnsmasq knows the name: a page fetched is an answer from dns_servers
    require_tool("dnsmasq")
    require_transport(transport)
    write(tmp_path / "graph.py", GRAPH_SPIDER)
    folder = tmp_path / "dns"
    folder.mkdir()
    with dnsmasq({"h1.bench.test": "127.0.0.1"}, folder) as dns:
        async with serve(link_graph_app(20)) as base:
            port = base.rsplit(":", 1)[1]
            result = await pooledcrawl(
                *("crawl", "graph.py", "-a", f"base=http://h1.bench.test:{port}"),
                *("-s", f"transport={transport}", "-s", f"dns_servers={dns.server}"),
                *("-s", "politeness_key=ip", "--stats", "stats.json"),
                cwd=tmp_path,
            )
    assert result.returncode == 0, result.stderr
    stats = orjson.loads((tmp_path / "stats.json").read_bytes())
    assert stats["pages"] == 20 and stats["errors"] == {}
    assert set(stats["domains"]) == {f"127.0.0.1:{port}"}
    # one lookup, shared by the routing by address and the transport
    assert stats["dns"]["backend"] == "c-ares" and stats["dns"]["lookups"] == 1


# ---- Ctrl-C ------------------------------------------------------------------------------


def slow_graph_app(n: int, delay: float) -> web.Application:
    async def page(request: web.Request) -> web.Response:
        await asyncio.sleep(delay)
        return web.Response(
            text=link_graph_page(int(request.match_info["i"]), n), content_type="text/html"
        )

    app = web.Application()
    app.router.add_get(r"/p/{i:\d+}.html", page)
    return app


async def test_ctrl_c_leaves_a_complete_feed_and_stats(tmp_path: Path) -> None:
    write(tmp_path / "graph.py", GRAPH_SPIDER)
    out, stats_path = tmp_path / "items.jsonl", tmp_path / "stats.json"
    async with serve(slow_graph_app(100_000, delay=0.05)) as base:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pooledcrawl",
            "crawl",
            "graph.py",
            "-a",
            f"base={base}",
            "-a",
            "per_page=20",
            "--concurrency",
            "4",
            "-o",
            "items.jsonl",
            "--stats",
            "stats.json",
            cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(30):
                while not out.exists() or out.stat().st_size == 0:
                    assert proc.returncode is None, "the crawl ended before any items"
                    await asyncio.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            async with asyncio.timeout(30):
                _, stderr = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.returncode == 130, stderr.decode()
    assert b"Traceback" not in stderr
    items = read_jsonl(out)
    stats = orjson.loads(stats_path.read_bytes())
    assert set(stats) >= STABLE_STATS_KEYS
    assert stats["finish_reason"] == "shutdown (SIGINT)"
    # Everything the engine counted reached the file: nothing lost in a buffer.
    assert len(items) == stats["items"] > 0
    assert stats["pages"] < 100_000
    assert not (tmp_path / "stats.json.tmp").exists()
