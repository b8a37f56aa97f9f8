"""A rate-limited benchmark target whose limit can be halved while a crawl runs.

nginx (one worker, echo module for the added latency) when installed, else an
aiohttp server in its own process. Both halve the limit when a flag file appears
and note the time of the first request, so the harness can switch the limit a
fixed time into the crawl::

    with serve_switchable(site, rate=300, burst=10, delay=0.1) as target:
        first = target.wait_first_request(timeout=30)
        ...
        target.halve()

The other scenarios use :func:`benchmarks.servers.serve`; this module only adds
what that one cannot do: change the limit mid-crawl.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from benchmarks.servers import echo_module, nginx_available

__all__ = ["SwitchableTarget", "serve_switchable"]

_START_TIMEOUT = 10.0


@dataclass
class SwitchableTarget:
    kind: Literal["nginx", "python"]
    url: str
    """``http://127.0.0.1:PORT`` (pages under ``/p/``)."""
    detail: str
    run_dir: Path

    @property
    def _flag(self) -> Path:
        return self.run_dir / "halve"

    @property
    def _first(self) -> Path:
        return self.run_dir / "access.log"

    def halve(self) -> None:
        """From now on the limit is half the starting rate."""
        self._flag.touch()

    def wait_first_request(self, timeout: float) -> float | None:
        """``time.monotonic()`` soon after the first request arrived; None on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if self._first.stat().st_size > 0:
                    return time.monotonic()
            time.sleep(0.005)
        return None


@contextlib.contextmanager
def serve_switchable(
    site: Path,
    *,
    rate: float,
    burst: int,
    delay: float,
    kind: Literal["auto", "nginx", "python"] = "auto",
) -> Iterator[SwitchableTarget]:
    if kind == "auto":
        kind = "nginx" if nginx_available() and echo_module() is not None else "python"
    run_dir = Path(tempfile.mkdtemp(prefix="pcbench-throttle-"))
    try:
        if kind == "nginx":
            with _nginx(Path(site).resolve(), run_dir, rate, burst, delay) as target:
                yield target
        else:
            with _python(Path(site).resolve(), run_dir, rate, burst, delay) as target:
                yield target
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


# ---- nginx ------------------------------------------------------------------------------
def _nginx_config(
    run_dir: Path, site: Path, port: int, rate: float, burst: int, delay: float
) -> str:
    module = echo_module()
    if module is None:
        raise RuntimeError("nginx echo module missing (apt install libnginx-mod-http-echo)")
    user = f"user {pwd.getpwuid(0).pw_name};" if os.geteuid() == 0 else ""
    temps = " ".join(
        f"{kind}_temp_path {run_dir}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # Two zones: the full rate always, half the rate keyed on a variable that stays
    # empty (so unaccounted) until the flag file exists.
    return f"""
worker_processes 1; daemon off; pid {run_dir}/nginx.pid; error_log {run_dir}/error.log warn;
{user}
load_module {module};
events {{ worker_connections 4096; }}
http {{
    access_log off; sendfile on; tcp_nodelay on; default_type text/html;
    keepalive_requests 1000000; keepalive_timeout 75s;
    {temps}
    limit_req_zone $server_port zone=full:1m rate={round(rate)}r/s;
    limit_req_zone $half_key zone=half:1m rate={max(round(rate / 2), 1)}r/s;
    server {{
        listen 127.0.0.1:{port};
        set $half_key "";
        if (-f {run_dir}/halve) {{ set $half_key $server_port; }}
        location /p/ {{
            access_log {run_dir}/access.log;
            limit_req zone=full burst={burst} nodelay;
            limit_req zone=half burst={burst} nodelay;
            limit_req_status 429;
            echo_sleep {delay}; echo_location /raw$uri;
        }}
        location /raw/ {{ internal; alias {site}/; }}
    }}
}}
"""


@contextlib.contextmanager
def _nginx(
    site: Path, run_dir: Path, rate: float, burst: int, delay: float
) -> Iterator[SwitchableTarget]:
    version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    port = _free_port()
    conf = run_dir / "nginx.conf"
    conf.write_text(_nginx_config(run_dir, site, port, rate, burst, delay))
    proc = subprocess.Popen(
        ["nginx", "-c", str(conf), "-p", str(run_dir), "-e", str(run_dir / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not _wait_listening(port, proc):
            log = run_dir / "error.log"
            text = log.read_text() if log.exists() else ""
            raise RuntimeError(f"nginx did not start: {text.strip()[-500:]}")
        detail = f"{version.split(': ')[-1]}, 1 worker"
        yield SwitchableTarget("nginx", f"http://127.0.0.1:{port}", detail, run_dir)
    finally:
        _stop(proc)


# ---- the Python fallback ------------------------------------------------------------------
@contextlib.contextmanager
def _python(
    site: Path, run_dir: Path, rate: float, burst: int, delay: float
) -> Iterator[SwitchableTarget]:
    root = Path(__file__).resolve().parent.parent
    args = [str(site), str(run_dir), str(rate), str(burst), str(delay)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._throttle_server", *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the Python fallback server did not start")
        port = int(line)
        detail = "Python fallback (aiohttp, 1 process)"
        yield SwitchableTarget("python", f"http://127.0.0.1:{port}", detail, run_dir)
    finally:
        _stop(proc)


async def _serve_python(site: Path, run_dir: Path, rate: float, burst: int, delay: float) -> None:
    from aiohttp import web

    pages = (site / "p").resolve()
    cache: dict[str, bytes] = {}
    flag, first = run_dir / "halve", run_dir / "access.log"
    state = {"tokens": burst + 1.0, "last": time.monotonic(), "seen": False}

    def admit() -> bool:
        now = time.monotonic()
        current = rate / 2 if flag.exists() else rate
        tokens = min(burst + 1.0, state["tokens"] + (now - state["last"]) * current)
        state["last"] = now
        if tokens < 1.0:
            state["tokens"] = tokens
            return False
        state["tokens"] = tokens - 1.0
        return True

    async def page(request: web.Request) -> web.Response:
        if not state["seen"]:
            state["seen"] = True
            first.write_text("first\n")
        if not admit():
            return web.Response(status=429, text="Too Many Requests")
        await asyncio.sleep(delay)
        name = request.match_info["name"]
        body = cache.get(name)
        if body is None:
            path = pages / name
            if "/" in name or not path.is_file():
                raise web.HTTPNotFound()
            body = cache[name] = path.read_bytes()
        return web.Response(body=body, content_type="text/html")

    app = web.Application()
    app.router.add_get("/p/{name}", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock, backlog=1024).start()
    print(sock.getsockname()[1], flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


# ---- helpers ----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _stop(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _main() -> None:
    parser = argparse.ArgumentParser(description="Switchable rate-limited site (fallback).")
    parser.add_argument("site", type=Path)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("rate", type=float)
    parser.add_argument("burst", type=int)
    parser.add_argument("delay", type=float)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_python(args.site, args.run_dir, args.rate, args.burst, args.delay))


if __name__ == "__main__":
    _main()
