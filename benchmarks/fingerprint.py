"""What a client looks like on the wire: its TLS ClientHello and HTTP/2 preface, next to
a real browser's.

    python -m benchmarks.fingerprint            # Chromium, curl (impersonate), httpx
    python -m benchmarks.fingerprint --json out.json

A loopback server (``localhost``, an ephemeral port, trustme certificates) records,
for every client that connects:

* the **ClientHello**, read raw from the TCP stream before any TLS library sees it
  (Python's ``ssl`` does not expose it): cipher suites, extensions, ALPN, supported
  groups, signature algorithms, and a JA4 fingerprint (FoxIO's JA4 spec), whose
  sorted lists make Chrome's extension-order shuffling irrelevant. GREASE values
  are dropped, as JA4 does;
* the **HTTP/2 preface**, parsed from the decrypted stream: the SETTINGS values in
  their order, the connection WINDOW_UPDATE increment, PRIORITY frames, the order
  of the pseudo-headers and of the other headers (Akamai's HTTP/2 fingerprint
  format: ``SETTINGS|WINDOW_UPDATE|PRIORITY|pseudo-headers``).

The front end peeks at the ClientHello and relays the bytes, untouched, to an
``h2``-library TLS server behind it, which completes the handshake and answers.
Clients compared: headless Chromium (the Debian package), curl_cffi
impersonating Chrome through pooledcrawl's curl transport, and httpx through
pooledcrawl's httpx transport.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import os
import shutil
import ssl
import struct
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import hpack
import orjson
import trustme

__all__ = [
    "IDENTIFYING_FIELDS",
    "ClientHello",
    "Fingerprint",
    "FingerprintServer",
    "H2Preface",
    "compare",
    "fingerprint_chromium",
    "fingerprint_pooledcrawl",
    "parse_client_hello",
    "parse_h2_preface",
]

CHROMIUM = os.environ.get("PCRAWL_CHROMIUM", "chromium")
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_PAGE = b"<!doctype html><html><head><title>fingerprint</title></head><body>ok</body></html>"
#: fields a server can tell clients apart by: compared in the table and the test
IDENTIFYING_FIELDS = (
    "ja4",
    "ja4_a",
    "ja4_ciphers",
    "ja4_extensions",
    "alpn",
    "groups",
    "sig_algs",
    "h2_settings",
    "h2_window_update",
    "h2_pseudo_order",
    "h2_header_order",
)


def _grease(value: int) -> bool:
    """RFC 8701 GREASE values: 0x?a?a with both bytes equal."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


# ---- TLS ClientHello -------------------------------------------------------------------
@dataclasses.dataclass
class ClientHello:
    ciphers: list[int]
    extensions: list[int]
    """In the order sent, GREASE removed."""
    alpn: list[str]
    groups: list[int]
    sig_algs: list[int]
    versions: list[int]
    sni: str | None

    def ja4(self) -> str:
        """FoxIO's JA4: ``t13d1516h2_<sorted ciphers>_<sorted extensions, sig algs>``."""
        version = max(self.versions) if self.versions else 0x0303
        tls = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10"}.get(version, "00")
        alpn = self.alpn[0] if self.alpn else ""
        alpn_code = (alpn[0] + alpn[-1]) if alpn else "00"
        a = (
            f"t{tls}{'d' if self.sni else 'i'}"
            f"{min(len(self.ciphers), 99):02d}{min(len(self.extensions), 99):02d}{alpn_code}"
        )
        b = _hash12(",".join(f"{c:04x}" for c in sorted(self.ciphers)))
        rest = sorted(e for e in self.extensions if e not in (0x0000, 0x0010))
        c_text = ",".join(f"{e:04x}" for e in rest)
        if self.sig_algs:
            c_text += "_" + ",".join(f"{s:04x}" for s in self.sig_algs)
        return f"{a}_{b}_{_hash12(c_text)}"


def _hash12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12] if text else "000000000000"


def parse_client_hello(handshake: bytes) -> ClientHello:
    """Parse a ClientHello handshake message (type 1, without the record header)."""
    if not handshake or handshake[0] != 1:
        raise ValueError("not a ClientHello")
    body = handshake[4 : 4 + int.from_bytes(handshake[1:4], "big")]
    pos = 2 + 32  # legacy version, random
    pos += 1 + body[pos]  # session id
    (length,) = struct.unpack_from("!H", body, pos)
    raw = body[pos + 2 : pos + 2 + length]
    ciphers = [c for (c,) in struct.iter_unpack("!H", raw) if not _grease(c)]
    pos += 2 + length
    pos += 1 + body[pos]  # compression methods
    hello = ClientHello(ciphers, [], [], [], [], [], None)
    if pos >= len(body):
        return hello
    (total,) = struct.unpack_from("!H", body, pos)
    pos += 2
    end = pos + total
    while pos + 4 <= end:
        kind, size = struct.unpack_from("!HH", body, pos)
        data = body[pos + 4 : pos + 4 + size]
        pos += 4 + size
        if _grease(kind):
            continue
        hello.extensions.append(kind)
        if kind == 0x0000 and len(data) > 5:  # server_name: list, type, name
            hello.sni = data[5 : 5 + int.from_bytes(data[3:5], "big")].decode("ascii", "replace")
        elif kind == 0x0010:  # ALPN
            at = 2
            while at < len(data):
                n = data[at]
                hello.alpn.append(data[at + 1 : at + 1 + n].decode("ascii", "replace"))
                at += 1 + n
        elif kind == 0x000A:  # supported_groups
            hello.groups = [g for (g,) in struct.iter_unpack("!H", data[2:]) if not _grease(g)]
        elif kind == 0x000D:  # signature_algorithms
            hello.sig_algs = [s for (s,) in struct.iter_unpack("!H", data[2:]) if not _grease(s)]
        elif kind == 0x002B:  # supported_versions
            hello.versions = [
                v for (v,) in struct.iter_unpack("!H", data[1 : 1 + data[0]]) if not _grease(v)
            ]
    return hello


async def _read_client_hello(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """The raw bytes read (to relay) and the ClientHello handshake message in them."""
    raw = b""
    message = b""
    needed: int | None = None
    while needed is None or len(message) < needed:
        header = await reader.readexactly(5)
        if header[0] != 0x16:  # not a handshake record: not TLS
            raise ValueError("not a TLS handshake")
        record = await reader.readexactly(int.from_bytes(header[3:5], "big"))
        raw += header + record
        message += record
        if needed is None and len(message) >= 4:
            needed = 4 + int.from_bytes(message[1:4], "big")
    return raw, message[:needed]


# ---- HTTP/2 preface --------------------------------------------------------------------
@dataclasses.dataclass
class H2Preface:
    settings: list[tuple[int, int]]
    window_update: int
    priority: list[str]
    pseudo_order: list[str]
    header_order: list[str]
    headers: list[tuple[str, str]]

    def akamai(self) -> str:
        settings = ";".join(f"{k}:{v}" for k, v in self.settings)
        pseudo = ",".join(p[1] for p in self.pseudo_order)
        return f"{settings}|{self.window_update}|{','.join(self.priority) or '0'}|{pseudo}"


def parse_h2_preface(data: bytes) -> H2Preface | None:
    """The client's first frames, up to and including its first HEADERS; None when the
    bytes are not an HTTP/2 connection preface (an HTTP/1.1 client)."""
    if not data.startswith(_PREFACE):
        return None
    pos = len(_PREFACE)
    preface = H2Preface([], 0, [], [], [], [])
    decoder = hpack.Decoder()
    while pos + 9 <= len(data):
        length = int.from_bytes(data[pos : pos + 3], "big")
        kind, flags = data[pos + 3], data[pos + 4]
        stream = int.from_bytes(data[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
        payload = data[pos + 9 : pos + 9 + length]
        pos += 9 + length
        if kind == 0x4 and not flags & 0x1:  # SETTINGS, not an ACK
            preface.settings += list(struct.iter_unpack("!HI", payload))
        elif kind == 0x8 and stream == 0:  # connection WINDOW_UPDATE
            preface.window_update = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
        elif kind == 0x2:  # PRIORITY
            dep = int.from_bytes(payload[:4], "big")
            preface.priority.append(f"{stream}:{dep >> 31}:{dep & 0x7FFFFFFF}:{payload[4] + 1}")
        elif kind == 0x1:  # HEADERS: the first request
            at = payload[0] + 1 if flags & 0x8 else 0  # padded
            end = len(payload) - (payload[0] if flags & 0x8 else 0)
            if flags & 0x20:  # PRIORITY flag: dependency and weight
                at += 5
            headers = [(_text(k), _text(v)) for k, v in decoder.decode(payload[at:end], raw=True)]
            preface.headers = headers
            preface.pseudo_order = [k for k, _ in headers if k.startswith(":")]
            preface.header_order = [k for k, _ in headers if not k.startswith(":")]
            break
    return preface


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


# ---- the server ------------------------------------------------------------------------
@dataclasses.dataclass
class Fingerprint:
    hello: ClientHello
    h2: H2Preface | None
    http1_headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def fields(self) -> dict[str, Any]:
        ja4 = self.hello.ja4()
        a, b, c = ja4.split("_")
        h2 = self.h2
        return {
            "ja4": ja4,
            "ja4_a": a,
            "ja4_ciphers": b,
            "ja4_extensions": c,
            "alpn": ",".join(self.hello.alpn),
            "groups": ",".join(f"{g:04x}" for g in self.hello.groups),
            "sig_algs": ",".join(f"{s:04x}" for s in self.hello.sig_algs),
            "h2_settings": ";".join(f"{k}:{v}" for k, v in h2.settings) if h2 else "-",
            "h2_window_update": str(h2.window_update) if h2 else "-",
            "h2_pseudo_order": ",".join(h2.pseudo_order) if h2 else "-",
            "h2_header_order": ",".join(h2.header_order) if h2 else "-",
            "user_agent": self.header("user-agent"),
            "extensions": ",".join(f"{e:04x}" for e in sorted(self.hello.extensions)),
            "akamai": h2.akamai() if h2 else "-",
        }

    def header(self, name: str) -> str:
        headers = self.h2.headers if self.h2 else self.http1_headers
        return next((v for k, v in headers if k.lower() == name), "")


class FingerprintServer:
    """A front end on ``localhost`` that records each connection's ClientHello and
    relays it to a TLS + HTTP/2 server that records the HTTP/2 preface."""

    def __init__(self, folder: Path) -> None:
        ca = trustme.CA()
        cert = ca.issue_cert("localhost", "127.0.0.1")
        self.ca_path = folder / "fp-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self._context)
        self._context.set_alpn_protocols(["h2", "http/1.1"])
        self.hellos: list[ClientHello] = []
        #: per connection, in order: the HTTP/2 preface, or the HTTP/1.1 headers
        self.sessions: list[H2Preface | list[tuple[str, str]]] = []
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FingerprintServer]:
        backend = await asyncio.start_server(self._serve_tls, "127.0.0.1", 0, ssl=self._context)
        self._backend_port = backend.sockets[0].getsockname()[1]
        front = await asyncio.start_server(self._front, "127.0.0.1", 0)
        self.port = front.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            front.close()
            backend.close()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}/"

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _track(self) -> None:
        """Own the connection handler's task, so that closing the server ends it."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _front(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._track()
        try:
            async with asyncio.timeout(30):
                raw, message = await _read_client_hello(reader)
                self.hellos.append(parse_client_hello(message))
                up_reader, up_writer = await asyncio.open_connection(
                    "127.0.0.1", self._backend_port
                )
                up_writer.write(raw)
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except asyncio.CancelledError:  # the server is closing: end quietly
            pass
        finally:
            writer.close()

    async def _serve_tls(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._track()
        try:
            async with asyncio.timeout(30):
                ssl_object = writer.get_extra_info("ssl_object")
                if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
                    await self._serve_h2(reader, writer)
                else:
                    await self._serve_http1(reader, writer)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ssl.SSLError):
            pass
        except asyncio.CancelledError:  # the server is closing: end quietly
            pass
        finally:
            writer.close()

    async def _serve_http1(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")[1:]
        pairs = [line.split(": ", 1) for line in lines if ": " in line]
        self.sessions.append([(name, value) for name, value in pairs])
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(_PAGE), _PAGE)
        )
        await writer.drain()

    async def _serve_h2(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        received = b""
        recorded = False
        while True:
            data = await reader.read(65536)
            if not data:
                return
            if not recorded:
                received += data
                preface = parse_h2_preface(received)
                if preface is not None and preface.pseudo_order:
                    self.sessions.append(preface)
                    recorded = True
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    conn.send_headers(
                        event.stream_id,
                        [(":status", "200"), ("content-type", "text/html")],
                    )
                    conn.send_data(event.stream_id, _PAGE, end_stream=True)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    writer.write(conn.data_to_send())
                    return
            writer.write(conn.data_to_send())
            await writer.drain()

    def fingerprint(self, index: int = 0) -> Fingerprint:
        session = self.sessions[index]
        if isinstance(session, H2Preface):
            return Fingerprint(self.hellos[index], session)
        return Fingerprint(self.hellos[index], None, session)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()


# ---- the clients -----------------------------------------------------------------------
async def fingerprint_chromium(folder: Path, chromium: str = CHROMIUM) -> Fingerprint:
    """Headless Chromium loading the page once (``--dump-dom``: it exits when loaded)."""
    async with FingerprintServer(folder).running() as server:
        with tempfile.TemporaryDirectory(dir=folder) as profile:
            proc = await asyncio.create_subprocess_exec(
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--ignore-certificate-errors",
                "--dump-dom",
                server.url,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                async with asyncio.timeout(60):
                    await proc.wait()
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        if not server.hellos:
            raise RuntimeError("Chromium never connected")
        return server.fingerprint()


async def fingerprint_pooledcrawl(folder: Path, **settings: Any) -> Fingerprint:
    """One request through the transport pooledcrawl picks for ``settings``."""
    from pooledcrawl.http.request import Request
    from pooledcrawl.settings import Settings
    from pooledcrawl.transport.factory import make_transport

    async with FingerprintServer(folder).running() as server:
        transport = make_transport(Settings(ca_bundle=str(server.ca_path), **settings))
        try:
            response = await transport.fetch(Request(server.url))
        finally:
            await transport.close()
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")
        return server.fingerprint()


CLIENTS: dict[str, Callable[[Path], Coroutine[Any, Any, Fingerprint]]] = {
    "chromium": fingerprint_chromium,
    "curl chrome": lambda folder: fingerprint_pooledcrawl(
        folder, transport="curl", impersonate="chrome"
    ),
    "httpx": lambda folder: fingerprint_pooledcrawl(folder, transport="httpx", http2=True),
}


def compare(reference: Fingerprint, other: Fingerprint) -> dict[str, bool]:
    """Which identifying fields of ``other`` equal the reference's."""
    ref, got = reference.fields(), other.fields()
    return {name: ref[name] == got[name] for name in IDENTIFYING_FIELDS}


async def collect(folder: Path) -> dict[str, Fingerprint]:
    return {name: await client(folder) for name, client in CLIENTS.items()}


def render(results: dict[str, Fingerprint]) -> list[str]:
    """A Markdown table: one row per field, one column per client; ✓ where it equals
    Chromium's."""
    reference = results["chromium"]
    names = list(results)
    lines = [
        "| field | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    fields = [results[n].fields() for n in names]
    for field in (*IDENTIFYING_FIELDS, "user_agent"):
        cells = []
        for name, values in zip(names, fields, strict=True):
            value = values[field]
            short = value if len(value) <= 40 else value[:37] + "..."
            mark = "" if name == "chromium" else (" ✓" if value == fields[0][field] else " ✗")
            cells.append(f"`{short}`{mark}")
        lines.append(f"| {field} | " + " | ".join(cells) + " |")
    scores = [
        f"{name}: {sum(compare(reference, results[name]).values())}/{len(IDENTIFYING_FIELDS)}"
        for name in names[1:]
    ]
    lines.append("")
    lines.append("fields equal to Chromium's: " + ", ".join(scores))
    mine = set(reference.hello.extensions)
    for name in names[1:]:
        theirs = set(results[name].hello.extensions)
        only_ref = ", ".join(_ext_name(e) for e in sorted(mine - theirs)) or "none"
        only_other = ", ".join(_ext_name(e) for e in sorted(theirs - mine)) or "none"
        lines.append(f"TLS extensions only Chromium sends, vs {name}: {only_ref}")
        lines.append(f"TLS extensions only {name} sends: {only_other}")
    return lines


#: IANA TLS ExtensionType names for the ones that tell clients apart
_EXTENSIONS = {
    0x0000: "server_name",
    0x0005: "status_request",
    0x000A: "supported_groups",
    0x000B: "ec_point_formats",
    0x000D: "signature_algorithms",
    0x0010: "alpn",
    0x0012: "signed_certificate_timestamp",
    0x0015: "padding",
    0x0016: "encrypt_then_mac",
    0x0017: "extended_master_secret",
    0x001B: "compress_certificate",
    0x0023: "session_ticket",
    0x002B: "supported_versions",
    0x002D: "psk_key_exchange_modes",
    0x0031: "post_handshake_auth",
    0x0033: "key_share",
    0x44CD: "application_settings (new)",
    0x4469: "application_settings (old)",
    0xFE0D: "encrypted_client_hello",
    0xFF01: "renegotiation_info",
}


def _ext_name(value: int) -> str:
    return f"{_EXTENSIONS.get(value, 'extension')} ({value:#06x})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write every field to this file")
    args = parser.parse_args(argv)
    if shutil.which(CHROMIUM) is None:
        print(f"{CHROMIUM} is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        results = asyncio.run(collect(Path(tmp)))
    version = subprocess.run(
        [CHROMIUM, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(f"reference: {version}")
    print("\n".join(render(results)))
    if args.json:
        args.json.write_bytes(
            orjson.dumps({k: v.fields() for k, v in results.items()}, option=orjson.OPT_INDENT_2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
