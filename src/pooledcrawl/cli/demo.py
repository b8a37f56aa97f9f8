"""``pooledcrawl demo``: serve the bundled bookstore on 127.0.0.1 and crawl it."""

from __future__ import annotations

import argparse
import socket
import threading
from pathlib import Path
from typing import Any

from pooledcrawl.errors import UsageError
from pooledcrawl.runner import CrawlJob, build_settings, print_summary, run_job
from pooledcrawl.spider import load_spider_class

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="crawl a bundled bookstore site; no internet needed"
    )
    parser.add_argument(
        "-O",
        dest="output",
        default="demo-items.jsonl",
        metavar="FILE",
        help="where the items go (default: demo-items.jsonl, overwritten)",
    )
    parser.add_argument("--stats", metavar="FILE", help="write crawl stats as JSON to FILE")
    parser.add_argument("--report", metavar="FILE", help="write an HTML report to FILE")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument(
        "--serve",
        action="store_true",
        help="only serve the site (on 127.0.0.1) until Ctrl-C: a target for your own "
        "spiders and for fetch, parse, shell",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port for --serve (default: a free one)"
    )
    parser.set_defaults(run=run)


def example_path() -> Path:
    """``examples/bookstore.py`` in a checkout, or the copy shipped in the wheel."""
    here = Path(__file__).resolve()
    for candidate in (
        here.parents[1] / "_examples" / "bookstore.py",
        here.parents[3] / "examples" / "bookstore.py",
    ):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("examples/bookstore.py is missing from this installation")


class DemoServer:
    """The demo site on an ephemeral 127.0.0.1 port, in a background thread."""

    def __init__(self, port: int = 0) -> None:
        self._ready = threading.Event()
        self._stop: Any = None
        self._error: OSError | None = None
        self.port = port
        self._thread = threading.Thread(target=self._serve, name="demo-site", daemon=True)

    def __enter__(self) -> DemoServer:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise UsageError(
                f"demo: cannot listen on 127.0.0.1:{self.port}: {self._error.strerror}"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._stop()
        self._thread.join(5)

    def _serve(self) -> None:
        import asyncio

        from aiohttp import web

        from pooledcrawl.demo.site import build_app

        async def main() -> None:
            runner = web.AppRunner(build_app(), access_log=None)
            await runner.setup()
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", self.port))
            except OSError as exc:
                self._error = exc
                self._ready.set()
                return
            self.port = sock.getsockname()[1]
            site = web.SockSite(runner, sock)
            await site.start()
            done = asyncio.Event()
            loop = asyncio.get_running_loop()
            self._stop = lambda: loop.call_soon_threadsafe(done.set)
            self._ready.set()
            await done.wait()
            await runner.cleanup()

        asyncio.run(main())


def run(args: argparse.Namespace) -> int:
    if args.serve:
        return serve_until_interrupted(args.port)
    spider_cls = load_spider_class(str(example_path()))
    with DemoServer() as server:
        url = f"http://127.0.0.1:{server.port}/"
        print(f"demo bookstore at {url}; crawling it with examples/bookstore.py")
        job = CrawlJob(
            spider_cls=spider_cls,
            spider_args={"start": url},
            settings=build_settings(spider_cls, {"log_level": args.log_level}),
            outputs=[(args.output, True)],
            stats_path=args.stats,
        )
        stats, code = run_job(job)
    print_summary(stats)
    print(f"wrote {stats.items} items to {args.output}")
    if args.report:
        from pooledcrawl.report import write_report

        write_report(stats.to_dict(), args.report)
        print(f"wrote the report to {args.report}")
    return code


def serve_until_interrupted(port: int = 0) -> int:
    with DemoServer(port) as server:
        print(f"demo bookstore at http://127.0.0.1:{server.port}/ (Ctrl-C stops it)", flush=True)
        threading.Event().wait()  # Ctrl-C: the CLI exits 130 once the site is stopped
    return 0
