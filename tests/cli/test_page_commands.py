"""``fetch``, ``parse``, ``shell`` and ``new`` as real subprocesses, against the bundled
demo site and local servers (aiohttp, hypercorn for HTTP/2, pproxy as the proxy)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from sites import link_graph_app, pproxy, serve

import pooledcrawl
from pooledcrawl.cli.demo import DemoServer, example_path

pytestmark = pytest.mark.timeout(120)

SRC = str(Path(pooledcrawl.__file__).resolve().parents[1])
BOOKSTORE = str(example_path())


@dataclass
class Result:
    returncode: int
    stdout: bytes
    stderr: str

    @property
    def lines(self) -> list[dict[str, object]]:
        return [orjson.loads(line) for line in self.stdout.splitlines()]


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC, "DISPLAY": "", "WAYLAND_DISPLAY": "", **extra}


def run(*args: str, cwd: Path | None = None, stdin: str = "", **extra: str) -> Result:
    """``pooledcrawl ARGS`` in a subprocess (for sync tests: the servers run in threads)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pooledcrawl", *args],
        input=stdin.encode(),
        capture_output=True,
        cwd=cwd,
        env=env(**extra),
        timeout=60,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr.decode())


async def arun(*args: str, **extra: str) -> Result:
    """The same, for async tests whose servers run on the test's event loop."""
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "pooledcrawl", *args),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env(**extra),
    )
    async with asyncio.timeout(60):
        stdout, stderr = await proc.communicate()
    assert proc.returncode is not None
    return Result(proc.returncode, stdout, stderr.decode())


def run_here(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    """``main(args)`` in this process: user errors need no subprocess to be checked."""
    from pooledcrawl.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return Result(code, out.encode(), err)


def assert_user_error(result: Result, text: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pooledcrawl: error: "), result.stderr
    assert text in lines[0]
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def demo() -> Iterator[str]:
    with DemoServer() as server:
        yield f"http://127.0.0.1:{server.port}/"


def direct(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as page:
        body: bytes = page.read()
        return body


# ---- fetch --------------------------------------------------------------------------------
def test_fetch_prints_the_demo_page_body(demo: str) -> None:
    result = run("fetch", demo)
    assert result.returncode == 0, result.stderr
    assert result.stdout == direct(demo)
    assert b"<h1>All books</h1>" in result.stdout


def test_fetch_headers_shows_what_was_sent_and_received(demo: str) -> None:
    result = run("fetch", "--headers", demo, "-s", "user_agent=probe-agent/1.0")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert "> User-Agent: probe-agent/1.0" in lines
    assert "< HTTP/1.1 200" in lines
    assert any(line.lower().startswith("< content-type: text/html") for line in lines)
    assert b"<h1>" not in result.stdout


def echo_app(seen: list[dict[str, str]]) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(text=f"ua={request.headers.get('User-Agent')}")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/echo")

    app = web.Application()
    app.router.add_get("/echo", echo)
    app.router.add_get("/moved", moved)
    return app


async def test_fetch_sends_the_crawlers_headers_from_settings_and_profile(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "mine.toml").write_text(
        'description = "test"\n[http]\nuser_agent = "profile-agent"\n'
        '[http.default_headers]\nAccept-Language = "fr"\n'
    )
    seen: list[dict[str, str]] = []
    async with serve(echo_app(seen)) as base:
        by_profile = await arun(
            "fetch", f"{base}/moved", "--profile", "mine", "--profiles-dir", str(profiles)
        )
        by_flag = await arun(
            *("fetch", f"{base}/echo", "--profile", "mine", "--profiles-dir", str(profiles)),
            *("-s", "user_agent=cli-agent"),
        )
    assert by_profile.returncode == 0, by_profile.stderr
    assert by_profile.stdout == b"ua=profile-agent"
    assert "redirected to" in by_profile.stderr  # redirects are followed, as in a crawl
    assert seen[0]["Accept-Language"] == "fr"
    assert by_flag.stdout == b"ua=cli-agent"  # the command line wins over the profile


AGENT_MIDDLEWARE = """
class TeamAgent:
    def process_default_headers(self, headers, settings, spider):
        return {**headers, "User-Agent": "team-agent/2", "X-Team": spider.name}
"""

AGENT_SPIDER = """
from pooledcrawl import Spider

class Agented(Spider):
    name = "agented"
    custom_settings = {"middlewares": {"UserAgent": None, "team_mw.TeamAgent": 500}}

    def parse(self, response):
        yield {"ua": response.text}
"""


@pytest.mark.slow  # four subprocesses
async def test_page_commands_apply_the_middlewares_default_headers(tmp_path: Path) -> None:
    """The headers a page command sends are those a crawl would: what the
    ``middlewares`` setting's ``process_default_headers`` hooks make, not the settings'."""
    (tmp_path / "team_mw.py").write_text(AGENT_MIDDLEWARE)
    (tmp_path / "agented.py").write_text(AGENT_SPIDER)
    path = {"PYTHONPATH": os.pathsep.join([SRC, str(tmp_path)])}
    seen: list[dict[str, str]] = []
    async with serve(echo_app(seen)) as base:
        url = f"{base}/echo"
        custom = await arun(
            *("fetch", url, "-s", 'middlewares={"UserAgent": null, "team_mw.TeamAgent": 500}'),
            **path,
        )
        shown = await arun(
            *("fetch", "--headers", url, "-s", "middlewares=team_mw.TeamAgent"), **path
        )
        removed = await arun("fetch", url, "-s", 'middlewares={"UserAgent": null}')
        by_spider = await arun("parse", url, "--spider", str(tmp_path / "agented.py"), **path)
    for result in (custom, shown, removed, by_spider):
        assert result.returncode == 0, result.stderr
    assert custom.stdout == b"ua=team-agent/2"
    assert seen[0]["X-Team"] == "spider"  # the hook got a spider, as in a crawl
    # --headers prints what went out: the middleware's agent, listed after the built-in's
    assert "> User-Agent: team-agent/2" in shown.stdout.decode().splitlines()
    assert seen[1]["User-Agent"] == "team-agent/2"
    # UserAgent off: the HTTP library's own agent, not pooledcrawl's
    assert seen[2].get("User-Agent", "").startswith("Python/")
    assert "pooledcrawl" not in seen[2].get("User-Agent", "")
    assert by_spider.lines == [{"item": {"ua": "ua=team-agent/2"}}]
    assert seen[3]["X-Team"] == "agented"


async def test_fetch_over_http2(tmp_path: Path) -> None:
    from transport.h2site import GraphApp, make_certs, serve_hypercorn

    certs = make_certs(tmp_path)
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "h2.toml").write_text('description = "test"\n[http]\nhttp2 = true\n')
    app = GraphApp(3)
    trust = ("-s", f"ca_bundle={certs.ca}")
    async with serve_hypercorn(app, certs) as base:
        result = await arun("fetch", "--headers", "--http2", f"{base}/p/0.html", *trust)
        plain = await arun("fetch", "--headers", f"{base}/p/0.html", *trust)
        profiled = await arun(
            *("fetch", "--headers", f"{base}/p/0.html", *trust),
            *("--profile", "h2", "--profiles-dir", str(profiles)),
        )
        httpx = await arun(
            "fetch", "--headers", "--http2", "--transport", "httpx", f"{base}/p/1.html", *trust
        )
    assert result.returncode == 0, result.stderr
    assert httpx.returncode == 0, httpx.stderr
    assert "< HTTP/2 200" in httpx.stdout.decode().splitlines()  # crawl's --transport too
    assert "< HTTP/2 200" in result.stdout.decode().splitlines()
    assert "< HTTP/1.1 200" in plain.stdout.decode().splitlines()
    assert "< HTTP/2 200" in profiled.stdout.decode().splitlines()  # the profile's version
    assert app.versions == {"2": 3, "1.1": 1}


async def test_fetch_goes_through_the_proxy_and_never_shows_its_secret() -> None:
    secret = "s3cret-pass-word"
    seen: list[dict[str, str]] = []
    async with serve(echo_app(seen)) as base, pproxy(auth=f"alice:{secret}") as proxy:
        port = proxy.port
        good = await arun(
            "fetch",
            f"{base}/echo",
            "--proxy",
            f"http://alice:${{PASS}}@127.0.0.1:{port}",
            PASS=secret,
        )
        wrong = await arun(
            *("fetch", "--headers", f"{base}/echo"),
            *("--proxy", f"http://alice:${{PASS}}@127.0.0.1:{port}"),
            PASS=secret + "-wrong",
        )
    closed = await arun("fetch", f"{base}/echo", "--proxy", f"http://alice:{secret}@127.0.0.1:9")
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith(b"ua=pooledcrawl/")
    assert len(seen) == 1
    # the proxy refused the wrong password: the request went to it, not to the server
    assert "< HTTP/1.1 407" in wrong.stdout.decode().splitlines()
    assert len(seen) == 1
    assert_user_error(closed, "127.0.0.1")
    for result in (good, wrong, closed):
        assert secret not in result.stdout.decode() + result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fetch", "not a url"], "fetch: 'not a url'"),
        (["fetch", "ftp://h.test/x"], "fetch: 'ftp://h.test/x'"),
        (["fetch", "http://127.0.0.1:9/"], "http://127.0.0.1:9/"),
        (["fetch", "http://127.0.0.1:9/", "-s", "nope=1"], "nope"),
        (["fetch", "http://127.0.0.1:9/", "--profile", "nope"], "unknown profile"),
    ],
)
def test_fetch_user_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert_user_error(run_here(capsys, *args), message)


# ---- parse --------------------------------------------------------------------------------
def test_parse_runs_the_default_callback_on_the_demo_front_page(demo: str) -> None:
    result = run("parse", demo, "--spider", BOOKSTORE)
    assert result.returncode == 0, result.stderr
    lines = result.lines
    requests = [line["request"] for line in lines]
    books = [r for r in requests if r["callback"] == "parse_book"]  # type: ignore[index]
    assert len(books) == 20
    # follow_all without a callback: the spider's parse, as in a crawl
    assert {
        "url": f"{demo}category/fiction/page-1.html",
        "method": "GET",
        "callback": "parse",
    } in requests
    assert all("item" not in line for line in lines)
    assert {"url": f"{demo}book/0.html", "method": "GET", "callback": "parse_book"} in books


def test_parse_with_a_callback_prints_the_item(demo: str) -> None:
    page = f"{demo}book/0.html"
    result = run("parse", page, "--spider", BOOKSTORE, "--callback", "parse_book")
    assert result.returncode == 0, result.stderr
    html = direct(page).decode()
    [line] = result.lines
    item = line["item"]
    assert isinstance(item, dict) and item["url"] == page
    assert f"<h1>{item['title']}</h1>" in html and str(item["price"]) in html


SPIDER = """
from pooledcrawl import Request, Spider


class Lister(Spider):
    name = "lister"
    label = "none"

    def parse(self, response):
        for href in response.css("a::attr(href)").getall()[:2]:
            yield {"label": self.label, "href": href}
        yield response.follow("/p/1.html", callback=self.parse_other, meta={"k": 1}, priority=3)

    def parse_other(self, response):
        yield {"ok": True}
        raise RuntimeError("broken selector in parse_other")
"""


def test_parse_passes_spider_arguments_and_shows_request_details(tmp_path: Path) -> None:
    spider = tmp_path / "lister.py"
    spider.write_text(textwrap.dedent(SPIDER))
    with serve_in_thread(link_graph_app(5)) as base:
        hrefs = re.findall(r'href="([^"]+)"', direct(f"{base}/p/0.html").decode())[:2]
        result = run("parse", f"{base}/p/0.html", "--spider", str(spider), "-a", "label=X")
        crash = run("parse", f"{base}/p/0.html", "--spider", str(spider), "-c", "parse_other")
    assert result.returncode == 0, result.stderr
    lines = result.lines
    assert lines[:2] == [{"item": {"label": "X", "href": h}} for h in hrefs]
    assert lines[2] == {
        "request": {
            "url": f"{base}/p/1.html",
            "method": "GET",
            "callback": "parse_other",
            "priority": 3,
            "meta": {"k": 1},
        }
    }
    # a crash in the callback: what came before it, then the traceback; exit 1
    assert crash.returncode == 1
    assert crash.lines == [{"item": {"ok": True}}]
    assert "RuntimeError: broken selector in parse_other" in crash.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--callback", "nope"], "has no method 'nope'"),
        (["--spider", "missing.py"], "missing.py"),
    ],
)
def test_parse_user_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], demo: str, extra: list[str], message: str
) -> None:
    args = ["parse", demo, "--spider", BOOKSTORE, *extra]
    assert_user_error(run_here(capsys, *args), message)


def test_parse_needs_a_spider(capsys: pytest.CaptureFixture[str], demo: str) -> None:
    assert_user_error(run_here(capsys, "parse", demo), "--spider")


# ---- shell --------------------------------------------------------------------------------
def test_shell_runs_the_standard_repl_on_stdin(demo: str) -> None:
    script = "\n".join(
        [
            "print('status', response.status, request.url)",
            "print('books', len(response.css('article h3 a')))",
            f"r = fetch('{demo}book/1.html')",
            "print('title', response.css('h1::text').get(), r is response)",
            "path = view(response)",
            "print('base', open(path).read().count('<base href='))",
            "fetch('http://127.0.0.1:9/')",
            "print('still', response.url)",
        ]
    )
    result = run("shell", demo, "--shell", "python", stdin=script + "\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert f"status 200 {demo}" in out
    assert "books 20" in out
    assert (
        f"title {direct(demo + 'book/1.html').decode().split('<h1>')[1].split('<')[0]} True" in out
    )
    assert "base 1" in out
    assert "fetch failed: http://127.0.0.1:9/" in result.stderr  # one line, the shell goes on
    assert f"still {demo}book/1.html" in out


def test_shell_opens_a_saved_page(tmp_path: Path) -> None:
    page = tmp_path / "saved.html"
    page.write_bytes(
        b'<?xml version="1.0" encoding="UTF-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml">'
        b'<body><a href="next.html">n</a></body></html>'
    )
    script = "print('links', response.css('a::attr(href)').getall(), response.follow('x').url)\n"
    result = run("shell", str(page), "--shell", "python", stdin=script)
    assert result.returncode == 0, result.stderr
    assert f"links ['next.html'] {(tmp_path / 'x').as_uri()}" in result.stdout.decode()


IPYTHON_STUB = """
def start_ipython(argv, user_ns):
    print("ipython", argv, sorted(k for k in user_ns if not k.startswith("_")))
    print("status", user_ns["response"].status)
"""


def test_shell_prefers_ipython_when_it_is_installed(demo: str, tmp_path: Path) -> None:
    # a stand-in IPython package: what matters is that the shell hands it the namespace
    (tmp_path / "IPython").mkdir()
    (tmp_path / "IPython" / "__init__.py").write_text(IPYTHON_STUB)
    result = run("shell", demo, PYTHONPATH=f"{SRC}{os.pathsep}{tmp_path}")
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert "ipython [] ['Request', 'fetch', 'request', 'response', 'settings', 'view']" in out
    assert "status 200" in out
    forced = run(
        "shell",
        demo,
        "--shell",
        "python",
        stdin="print('plain', 1 + 1)\n",
        PYTHONPATH=f"{SRC}{os.pathsep}{tmp_path}",
    )
    assert "plain 2" in forced.stdout.decode() and "ipython" not in forced.stdout.decode()


def test_shell_with_neither_url_nor_file(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_here(capsys, "shell", "nowhere.html", "--shell", "python")
    assert_user_error(result, "nowhere.html")


# ---- new ----------------------------------------------------------------------------------
@contextlib.contextmanager
def serve_in_thread(app: web.Application) -> Iterator[str]:
    """``sites.serve`` on a loop of its own, for tests that run the CLI synchronously."""
    import threading

    ready = threading.Event()
    stop: list[asyncio.Event] = []
    base: list[str] = []
    loops: list[asyncio.AbstractEventLoop] = []

    async def main() -> None:
        async with serve(app) as url:
            base.append(url)
            stop.append(asyncio.Event())
            loops.append(asyncio.get_running_loop())
            ready.set()
            await stop[0].wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield base[0]
    finally:
        loops[0].call_soon_threadsafe(stop[0].set)
        thread.join(10)


def test_new_basic_spider_crawls_a_local_site(tmp_path: Path) -> None:
    with serve_in_thread(link_graph_app(30)) as base:
        written = run("new", "graph_site", f"{base}/p/0.html", "--dir", str(tmp_path))
        assert written.returncode == 0, written.stderr
        spider = tmp_path / "graph_site.py"
        assert "class GraphSiteSpider(Spider)" in spider.read_text()
        crawl = run("crawl", str(spider), "-O", str(tmp_path / "out.jsonl"), cwd=tmp_path)
    assert crawl.returncode == 0, crawl.stderr
    items = [orjson.loads(x) for x in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    assert sorted(i["url"] for i in items) == sorted(f"{base}/p/{n}.html" for n in range(30))
    assert all(i["title"] == f"Item {i['url'].rsplit('/', 1)[1][:-5]}" for i in items)


def test_new_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text("# my work\n")
    result = run("new", "mine", "example.com", "--dir", str(tmp_path))
    assert_user_error(result, "already exists")
    assert (tmp_path / "mine.py").read_text() == "# my work\n"


@pytest.mark.parametrize(
    ("template", "base_class", "names"),
    [
        ("crawl", "CrawlSpider", ["CrawlSpider", "LinkExtractor", "Rule"]),
        ("sitemap", "SitemapSpider", ["SitemapSpider"]),
        ("basic", "Spider", ["Spider"]),
    ],
)
def test_new_templates_are_valid_python(
    tmp_path: Path, template: str, base_class: str, names: list[str]
) -> None:
    result = run(
        "new", "shop", "https://Shop.Example.com:8443/", "-t", template, "--dir", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "shop.py").read_text()
    compile(text, "shop.py", "exec")  # a syntax error fails here
    assert f"class ShopSpider({base_class}):" in text
    assert 'allowed_domains = ["shop.example.com"]' in text
    for name in names:
        assert f"{name}" in text.split("class ")[0]  # imported from pooledcrawl
    if template == "sitemap":
        assert 'sitemap_urls = ["https://shop.example.com:8443/robots.txt"]' in text
    else:
        assert 'start_urls = ["https://shop.example.com:8443/"]' in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["new", "my-spider", "example.com"], "must be a Python name"),
        (["new", "ok", "http://"], "new:"),
        (["new", "ok", "example.com", "-t", "nope"], "invalid choice"),
        (["new", "ok", "example.com", "--dir", "/nonexistent/dir"], "not a directory"),
    ],
)
def test_new_user_errors_are_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert_user_error(run_here(capsys, *args), message)
    assert list(tmp_path.iterdir()) == []


# ---- the demo site as a target ------------------------------------------------------------
def test_demo_serve_serves_the_bookstore_until_interrupted() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pooledcrawl", "demo", "--serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url is not None, line
        assert b"<h1>All books</h1>" in direct(url.group(0))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
