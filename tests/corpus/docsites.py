"""Real documentation sites from Debian packages, served by nginx on 127.0.0.1.

Each generator's output is served under ``/<name>/``; nginx logs every request
with its status, Content-Type and User-Agent, so the pages a crawler fetched are
read from the server's side, the same way for ``wget -r`` and for pooledcrawl.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

__all__ = ["GENERATORS", "DocServer", "Generator", "doc_server", "require"]

# Pod::Html's own folder: the Pod:: modules of perl-modules-5.x (Debian's "perl")
PERL_POD = next(
    (p.parent for p in sorted(Path("/usr/share/perl").glob("5*/Pod/Html.pm"))),
    Path("/usr/share/perl/5/Pod"),
)


@dataclass(frozen=True)
class Generator:
    name: str
    package: str
    """The Debian package the pages come from (``.ci/run`` installs it)."""
    root: Path
    start: str
    held_out: bool = False
    """Not looked at while the crawler was being fixed: a check that the fixes
    are general, not fitted to the other sites."""


GENERATORS = [
    Generator(
        "sphinx",
        "python-requests-doc",
        Path("/usr/share/doc/python-requests-doc/html"),
        "index.html",
    ),
    # XHTML 1.0 with an XML declaration, served as text/html
    Generator("docbook-xhtml", "debian-faq", Path("/usr/share/doc/debian/FAQ"), "index.en.html"),
    # DocBook XSL's own reference, HTML output: a site of about a thousand pages
    Generator(
        "docbook-html",
        "docbook-xsl-doc-html",
        Path("/usr/share/doc/docbook-xsl-doc-html/doc"),
        "index.html",
    ),
    Generator("asciidoc", "git-doc", Path("/usr/share/doc/git-doc"), "git.html"),
    Generator(
        "javadoc",
        "libatinject-jsr330-api-java-doc",
        Path("/usr/share/doc/libatinject-jsr330-api-java/api"),
        "index.html",
    ),
    Generator(
        "doxygen",
        "libjsoncpp-doc",
        Path("/usr/share/doc/libjsoncpp-doc"),
        "index.html",
        held_out=True,
    ),
    Generator("texinfo", "m4-doc", Path("/usr/share/doc/m4"), "index.html", held_out=True),
    # Debian ships no pod2html site any more: Perl's own pod2html renders the POD of
    # perl-modules' Pod:: namespace at test time, cross-linked; nginx's autoindex
    # listing is the start page
    Generator("pod2html", "perl", PERL_POD, ""),
]


def require(what: str, present: bool) -> None:
    """Skip when a tool or package is missing; fail instead under PCRAWL_REQUIRE_SERVICES."""
    if present:
        return
    message = f"{what} is not installed"
    if os.environ.get("PCRAWL_REQUIRE_SERVICES"):
        pytest.fail(message + " and PCRAWL_REQUIRE_SERVICES is set")
    pytest.skip(message)


@dataclass
class DocServer:
    base: str
    log: Path

    def url(self, generator: Generator) -> str:
        return f"{self.base}/{generator.name}/{generator.start}"

    def html_pages(self, user_agent: str) -> set[str]:
        """Paths that answered 200 with an HTML Content-Type to ``user_agent``,
        percent-decoded (the two clients may escape a character differently)."""
        self._settle()
        pages = set()
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            status, content_type, agent, uri = line.split("\t", 3)
            media = content_type.partition(";")[0].strip().lower()
            if agent == user_agent and status == "200" and media in _HTML_TYPES:
                pages.add(unquote(uri.partition("#")[0]))
        return pages

    def _settle(self) -> None:
        """Wait until nginx has logged every request made so far: its one worker
        logs a request as it finishes it, so once a marker request made now is in
        the log, the ones before it are too."""
        marker = uuid.uuid4().hex
        request = urllib.request.Request(f"{self.base}/{marker}", headers={"User-Agent": marker})
        with contextlib.suppress(urllib.error.HTTPError):  # a 404, as intended
            urllib.request.urlopen(request, timeout=10).close()
        deadline = time.monotonic() + 10
        while marker not in self.log.read_text(encoding="utf-8", errors="replace"):
            if time.monotonic() > deadline:
                raise RuntimeError("nginx did not log a request within 10 s")
            time.sleep(0.02)


_HTML_TYPES = {"text/html", "application/xhtml+xml"}
_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def render_pod(out: Path) -> None:
    """pod2html over Perl's Pod:: modules, in one perl process (Pod::Html resolves
    ``L<...>`` links against the tree it is given, so they cross-link)."""
    stage = out.parent / "pod-stage"
    stage.mkdir()
    (stage / "Pod").symlink_to(PERL_POD)
    script = r"""
use strict; use warnings; use Pod::Html; use File::Find;
use File::Path qw(make_path); use File::Basename;
my ($root, $out, $cache) = @ARGV;
chdir $root or die "$root: $!";
my @files;
find({ wanted => sub { push @files, $File::Find::name if /\.p(?:m|od)$/ }, follow => 1 }, 'Pod');
for my $f (sort @files) {
    (my $o = "$out/$f") =~ s/\.p(?:m|od)$/.html/;
    make_path(dirname($o));
    pod2html("--infile=$f", "--outfile=$o", "--podroot=$root", "--podpath=.",
             "--htmlroot=/pod2html", "--cachedir=$cache", "--quiet");
}
"""
    subprocess.run(
        ["perl", "-e", script, str(stage), str(out), str(out.parent)],
        check=True,
        capture_output=True,
        timeout=120,
    )


def _config(run_dir: Path, port: int, roots: dict[str, Path]) -> str:
    head = [
        "worker_processes 1;",
        "daemon off;",
        f"pid {run_dir}/nginx.pid;",
        f"error_log {run_dir}/error.log warn;",
    ]
    if os.geteuid() == 0:  # workers would otherwise run as "nobody"
        head.append(f"user {pwd.getpwuid(0).pw_name};")
    # a listing only where there is no start page: the pod2html tree
    locations = "\n".join(
        f"    location /{name}/ {{ alias {root}/; {'autoindex on;' * (name == 'pod2html')} }}"
        for name, root in roots.items()
    )
    return "\n".join(
        [
            *head,
            "events { worker_connections 256; }",
            "http {",
            "  include /etc/nginx/mime.types;",  # the types Debian's nginx serves
            "  default_type application/octet-stream;",
            "  log_format corpus"
            " '$status\t$sent_http_content_type\t$http_user_agent\t$request_uri';",
            f"  access_log {run_dir}/access.log corpus;",
            "  absolute_redirect off;",
            *(f"  {kind}_temp_path {run_dir}/{kind};" for kind in _TEMP_PATHS),
            f"  server {{ listen 127.0.0.1:{port};",
            locations,
            "  }",
            "}",
            "",
        ]
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def doc_server() -> Iterator[DocServer]:
    """nginx serving every installed generator's site on an ephemeral port."""
    require("nginx", shutil.which("nginx") is not None)
    run_dir = Path(tempfile.mkdtemp(prefix="pcrawl-corpus-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        roots = {g.name: g.root for g in GENERATORS if g.root.is_dir() and g.name != "pod2html"}
        if PERL_POD.is_dir() and shutil.which("perl"):
            pod = run_dir / "pod2html"
            pod.mkdir()
            render_pod(pod)
            roots["pod2html"] = pod
        for _attempt in range(3):  # a port picked here may be taken before nginx binds it
            port = _free_port()
            conf = run_dir / "nginx.conf"
            conf.write_text(_config(run_dir, port, roots))
            proc = subprocess.Popen(
                ["nginx", "-c", str(conf), "-p", str(run_dir), "-e", str(run_dir / "error.log")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < deadline and not _listening(port):
                time.sleep(0.05)
            if proc.poll() is None and _listening(port):
                break
            proc.kill()
            proc.wait()
            proc = None
        if proc is None:
            raise RuntimeError("nginx did not start: " + (run_dir / "error.log").read_text())
        yield DocServer(f"http://127.0.0.1:{port}", run_dir / "access.log")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(run_dir, ignore_errors=True)
