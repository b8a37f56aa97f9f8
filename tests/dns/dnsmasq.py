"""A real DNS server for tests and benchmarks: dnsmasq on 127.0.0.1, an ephemeral port.

It serves the names in a hosts file (``hN.bench.test`` -> 127.x.y.z) with a TTL,
answers NXDOMAIN for other names under ``bench.test``, and asks no one else. The
machine's own resolver configuration is never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Dnsmasq", "bench_address", "dnsmasq", "dnsmasq_available"]


def dnsmasq_available() -> bool:
    return shutil.which("dnsmasq") is not None or Path("/usr/sbin/dnsmasq").exists()


def bench_address(n: int) -> str:
    """127.x.y.z for host ``n`` (never 127.0.0.0 or a .0/.255 last octet)."""
    n += 1
    return f"127.{(n >> 16) & 0xFF}.{(n >> 8) & 0xFF}.{(n & 0xFF) or 1}"


@dataclass
class Dnsmasq:
    port: int
    hosts: dict[str, str]

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"


def _free_udp_tcp_port() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port: int = udp.getsockname()[1]
            with socket.socket() as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port for dnsmasq")


def _query_ok(port: int, name: str) -> bool:
    """One raw DNS A query (RFC 1035) to see that dnsmasq answers."""
    header = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        try:
            sock.sendto(header + labels + b"\x00\x01\x00\x01", ("127.0.0.1", port))
            reply = sock.recv(512)
        except OSError:
            return False
    return reply[:2] == b"\x12\x34"


@contextlib.contextmanager
def dnsmasq(
    hosts: Mapping[str, str], directory: Path, *, ttl: int = 60, extra: tuple[str, ...] = ()
) -> Iterator[Dnsmasq]:
    """Run dnsmasq serving ``hosts`` (name -> address) until the block ends."""
    binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    hosts_file = directory / "bench.hosts"
    hosts_file.write_text("".join(f"{addr} {name}\n" for name, addr in hosts.items()))
    os.chmod(directory, 0o755)  # dnsmasq may read it as an unprivileged user
    os.chmod(hosts_file, 0o644)
    for _ in range(5):
        port = _free_udp_tcp_port()
        command = [
            binary,
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            f"--port={port}",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--no-negcache",
            f"--addn-hosts={hosts_file}",
            "--local=/bench.test/",  # other names under it: NXDOMAIN, asked of no one
            f"--local-ttl={ttl}",
            "--pid-file=",
            "--log-facility=-",
            *extra,
        ]
        if os.geteuid() == 0:
            command.append("--user=root")
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 10.0
            while process.poll() is None and time.monotonic() < deadline:
                if _query_ok(port, next(iter(hosts), "x.bench.test")):
                    break
                time.sleep(0.05)
            if process.poll() is not None:
                continue  # lost the port to someone else: try another
            yield Dnsmasq(port, dict(hosts))
            return
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stderr is not None:
                process.stderr.close()
    raise RuntimeError("dnsmasq did not start")
