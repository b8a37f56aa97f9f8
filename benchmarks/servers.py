"""Serving the benchmark site on 127.0.0.1: nginx when installed, else a Python server.

nginx runs with one worker and no access log, so the target costs little CPU
next to the crawler it is measured against. Each :class:`Port` is one server
block: plain, rate-limited (``limit_req``; over the rate a 429 comes back at
once), slowed down (every response delayed), or both::

    with serve(site_root, [Port("plain"), Port("limited", rate=300, burst=10, delay=0.1)]) as srv:
        print(srv.kind, srv.url("plain"), srv.url("limited"))

The fallback server (``python -m benchmarks.servers``, aiohttp, in its own
process) implements the same ports; ``srv.kind`` says which one is serving.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

__all__ = ["Port", "Server", "echo_module", "nginx_available", "serve"]

Kind = Literal["auto", "nginx", "python"]
_ECHO_MODULE_DIRS = (
    "/usr/lib/nginx/modules",
    "/usr/lib64/nginx/modules",
    "/usr/local/nginx/modules",
)
_START_TIMEOUT = 10.0


@dataclasses.dataclass(frozen=True)
class Port:
    """One listening port serving the site, optionally rate-limited and slowed down."""

    name: str = "plain"
    rate: float | None = None
    """Requests per second allowed (nginx ``limit_req``); over it: 429 at once."""
    burst: int = 10
    """Requests over the rate accepted without delay (``burst=... nodelay``)."""
    delay: float | None = None
    """Seconds added to every response that is not rejected (nginx ``echo_sleep``)."""
    tls: bool = False
    """HTTPS with HTTP/2 (``listen ... ssl http2``, a self-signed certificate); nginx only."""


@dataclasses.dataclass(frozen=True)
class Server:
    kind: Literal["nginx", "python"]
    ports: dict[str, int]
    detail: str
    """e.g. ``nginx 1.22.1, 1 worker``: what the report says served the site."""
    tls: frozenset[str] = frozenset()
    """Names of the ports that speak HTTPS (and HTTP/2)."""

    def url(self, name: str = "plain") -> str:
        """``http://127.0.0.1:PORT`` (``https://`` for a TLS port) of the named port."""
        scheme = "https" if name in self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.ports[name]}"


def nginx_available() -> bool:
    return shutil.which("nginx") is not None


def echo_module() -> Path | None:
    """The nginx echo module (Debian: ``libnginx-mod-http-echo``), needed for ``delay``."""
    for folder in _ECHO_MODULE_DIRS:
        path = Path(folder) / "ngx_http_echo_module.so"
        if path.is_file():
            return path
    return None


@contextlib.contextmanager
def serve(
    site: Path, ports: Sequence[Port] = (Port(),), *, kind: Kind = "auto"
) -> Iterator[Server]:
    """Serve ``site`` (a folder with ``p/*.html``) on each of ``ports`` until the block exits."""
    names = [p.name for p in ports]
    if not ports or len(set(names)) != len(names):
        raise ValueError("ports need distinct names")
    if any(p.tls for p in ports) and (kind == "python" or not nginx_available()):
        raise RuntimeError("TLS + HTTP/2 ports need nginx (apt install nginx-light)")
    if kind == "auto":
        needs_echo = any(p.delay for p in ports)
        kind = "nginx" if nginx_available() and (echo_module() or not needs_echo) else "python"
    starter = _start_nginx if kind == "nginx" else _start_python
    with starter(Path(site).resolve(), ports) as server:
        yield server


# ---- nginx --------------------------------------------------------------------------------
def _free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def nginx_config(run_dir: Path, site: Path, ports: Sequence[Port], numbers: Sequence[int]) -> str:
    """The nginx.conf text: one worker, no access log, one server block per port."""
    head = ["worker_processes 1;", "daemon off;", f"pid {run_dir}/nginx.pid;"]
    head.append(f"error_log {run_dir}/error.log warn;")
    if os.geteuid() == 0:
        # Workers would otherwise run as "nobody" and might not read the site folder.
        head.append(f"user {pwd.getpwuid(0).pw_name};")
    if any(p.delay for p in ports):
        module = echo_module()
        if module is None:
            raise RuntimeError("nginx echo module missing (apt install libnginx-mod-http-echo)")
        head.append(f"load_module {module};")
    http = [
        "access_log off;",
        "sendfile on;",
        "tcp_nodelay on;",
        "keepalive_requests 1000000;",
        "keepalive_timeout 75s;",
        "default_type text/html;",
        *(f"{kind}_temp_path {run_dir}/{kind};" for kind in _TEMP_PATHS),
    ]
    for index, (port, number) in enumerate(zip(ports, numbers, strict=True)):
        limit = ""
        if port.rate is not None:
            zone = f"z{index}"
            http.append(f"limit_req_zone $server_port zone={zone}:1m rate={_rate(port.rate)};")
            limit = f"limit_req zone={zone} burst={port.burst} nodelay; limit_req_status 429;"
        if port.delay:
            http.append(
                f"server {{ listen 127.0.0.1:{number};"
                f" location /p/ {{ {limit} echo_sleep {port.delay}; echo_location /raw$uri; }}"
                f" location /raw/ {{ internal; alias {site}/; }} }}"
            )
        elif port.tls:
            http.append(
                f"server {{ listen 127.0.0.1:{number} ssl http2; root {site}; {limit}"
                f" ssl_certificate {run_dir}/cert.pem; ssl_certificate_key {run_dir}/key.pem; }}"
            )
        else:
            http.append(f"server {{ listen 127.0.0.1:{number}; root {site}; {limit} }}")
    lines = [*head, "events { worker_connections 4096; }", "http {"]
    lines += [f"    {line}" for line in http]
    lines.append("}")
    return "\n".join(lines) + "\n"


_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def _rate(rate: float) -> str:
    # limit_req takes whole requests per second or per minute
    return f"{round(rate)}r/s" if rate >= 1 else f"{max(round(rate * 60), 1)}r/m"


@contextlib.contextmanager
def _start_nginx(site: Path, ports: Sequence[Port]) -> Iterator[Server]:
    run_dir = Path(tempfile.mkdtemp(prefix="pcbench-nginx-"))
    version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    proc: subprocess.Popen[bytes] | None = None
    try:
        if any(p.tls for p in ports):  # self-signed, like ../shared/bench/nginx.sh makes
            key, cert = str(run_dir / "key.pem"), str(run_dir / "cert.pem")
            subprocess.run(
                [
                    *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes"),
                    *("-subj", "/CN=localhost", "-keyout", key, "-out", cert, "-days", "2"),
                ],
                check=True,
                capture_output=True,
            )
        for _attempt in range(3):  # a picked port may be taken before nginx binds it
            numbers = _free_ports(len(ports))
            conf = run_dir / "nginx.conf"
            conf.write_text(nginx_config(run_dir, site, ports, numbers))
            proc = subprocess.Popen(
                ["nginx", "-c", str(conf), "-p", str(run_dir), "-e", str(run_dir / "error.log")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if _wait_listening(proc, numbers):
                break
            _stop(proc)
            proc = None
        if proc is None:
            log = (run_dir / "error.log").read_text() if (run_dir / "error.log").exists() else ""
            raise RuntimeError(f"nginx did not start: {log.strip()[-500:]}")
        detail = f"{version.split(': ')[-1]}, 1 worker, access_log off"
        numbered = {p.name: n for p, n in zip(ports, numbers, strict=True)}
        yield Server("nginx", numbered, detail, frozenset(p.name for p in ports if p.tls))
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(run_dir, ignore_errors=True)


def _wait_listening(proc: subprocess.Popen[bytes], numbers: Sequence[int]) -> bool:
    deadline = time.monotonic() + _START_TIMEOUT
    pending = list(numbers)
    while pending and time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", pending[0]), timeout=0.5):
                pending.pop(0)
        except OSError:
            time.sleep(0.05)
    return not pending


def _stop(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---- the Python fallback ------------------------------------------------------------------
@contextlib.contextmanager
def _start_python(site: Path, ports: Sequence[Port]) -> Iterator[Server]:
    spec = json.dumps([dataclasses.asdict(p) for p in ports])
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.servers", str(site), spec],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the server prints its ports once it listens
        if not line:
            raise RuntimeError("the Python fallback server did not start")
        numbers: dict[str, int] = json.loads(line)
        yield Server("python", numbers, "Python fallback (aiohttp, 1 process)")
    finally:
        _stop(proc)


class _Bucket:
    """nginx's ``limit_req ... nodelay``: a leaky bucket of ``burst`` excess requests."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.excess = 0.0
        self.last = time.monotonic()

    def admit(self, now: float) -> bool:
        excess = max(self.excess - (now - self.last) * self.rate, 0.0) + 1.0
        if excess > self.burst + 1:
            return False
        self.excess, self.last = excess, now
        return True


async def _serve_python(site: Path, ports: Sequence[Port]) -> None:
    from aiohttp import web

    cache: dict[str, bytes] = {}
    pages = (site / "p").resolve()

    def read(name: str) -> bytes | None:
        body = cache.get(name)
        if body is None:
            path = pages / name
            if "/" in name or not path.is_file():
                return None
            body = cache[name] = path.read_bytes()
        return body

    def app_for(port: Port) -> web.Application:
        bucket = _Bucket(port.rate, port.burst) if port.rate is not None else None

        async def page(request: web.Request) -> web.Response:
            if bucket is not None and not bucket.admit(time.monotonic()):
                return web.Response(status=429, text="Too Many Requests")
            if port.delay:
                await asyncio.sleep(port.delay)
            body = read(request.match_info["name"])
            if body is None:
                raise web.HTTPNotFound()
            return web.Response(body=body, content_type="text/html")

        app = web.Application()
        app.router.add_get("/p/{name}", page)
        return app

    runners = []
    numbers: dict[str, int] = {}
    for port in ports:
        runner = web.AppRunner(app_for(port), access_log=None)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        numbers[port.name] = sock.getsockname()[1]
        await web.SockSite(runner, sock, backlog=1024).start()
        runners.append(runner)
    print(json.dumps(numbers), flush=True)
    try:
        await asyncio.Event().wait()  # until terminated
    finally:
        for runner in runners:
            await runner.cleanup()


def _main() -> None:
    parser = argparse.ArgumentParser(description="Serve a benchmark site (Python fallback).")
    parser.add_argument("site", type=Path)
    parser.add_argument("ports", help="JSON list of Port fields")
    args = parser.parse_args()
    ports = [Port(**fields) for fields in json.loads(args.ports)]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_python(args.site, ports))


if __name__ == "__main__":
    _main()
