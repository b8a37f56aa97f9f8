"""The examples are real: every file under ``examples/`` is run by some test, and the
docs show them by including the file, so what a reader copies is what was run.

The runs of ``docs_site.py`` (against the HTML Debian's FAQ package ships) and of
``toolkit.sh`` (against ``pooledcrawl demo --serve``) are here; the other examples
are run by the tests of their features, which the first test finds.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
FAQ = Path("/usr/share/doc/debian/FAQ")


def _require(what: str) -> None:
    message = f"{what} is not installed"
    if os.environ.get("PCRAWL_REQUIRE_SERVICES"):
        pytest.fail(message + " and PCRAWL_REQUIRE_SERVICES is set")
    pytest.skip(message)


def _example_files() -> list[Path]:
    return sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".py", ".sh"))


def test_every_example_is_run_by_some_test() -> None:
    tests = [p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("*.py")]
    examples = _example_files()
    assert len(examples) >= 6
    # Referenced in code, as a path the test passes on: "bookstore.py" in a string.
    unrun = [
        p.name
        for p in examples
        if not any(re.search(rf"[\"'/]{re.escape(p.name)}\"", t) for t in tests)
    ]
    assert not unrun, f"examples no test runs: {unrun}"


def _snippet_blocks(markdown: str) -> list[tuple[str, str]]:
    """``(title, body)`` of every fenced block whose title names a file under examples/."""
    pattern = re.compile(r'^```\w+ title="(examples/[^"]+)"\n(.*?)^```', re.M | re.S)
    return [(m.group(1), m.group(2)) for m in pattern.finditer(markdown)]


def test_docs_examples_are_the_files_themselves() -> None:
    """A block titled with an example's path is that file, included at build time
    (``--8<--``), never a copy that could drift from what the tests run."""
    found = 0
    for page in (ROOT / "docs").rglob("*.md"):
        for title, body in _snippet_blocks(page.read_text(encoding="utf-8")):
            found += 1
            assert body.strip() == f'--8<-- "{title}"', (
                f"{page.name}: {title} is pasted, not included"
            )
            assert (ROOT / title).is_file(), f"{page.name}: {title} does not exist"
    assert found >= 1  # getting-started.md shows examples/bookstore.py


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def faq_site() -> Iterator[str]:
    """The Debian FAQ served as the example's docstring says: ``python3 -m http.server``."""
    if not (FAQ / "index.en.html").is_file():
        _require("debian-faq (apt-get install debian-faq)")
    handler = functools.partial(_QuietHandler, directory=str(FAQ))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _pooledcrawl(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pooledcrawl", *args],
        cwd=cwd, capture_output=True, text=True, timeout=240,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip


def test_docs_site_example_lists_every_page_of_the_debian_faq(
    faq_site: str, tmp_path: Path
) -> None:
    out = tmp_path / "pages.jsonl"
    proc = _pooledcrawl(
        "crawl", str(EXAMPLES / "docs_site.py"), "-a", f"start={faq_site}index.en.html",
        "-O", str(out), "--log-level", "WARNING",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    items = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    paths = [urlsplit(item["url"]).path.lstrip("/") for item in items]
    assert len(paths) == len(set(paths))  # each page once
    english = {p.name for p in FAQ.glob("*.en.html")}
    # Every chapter of the English FAQ is linked from its index, directly or not.
    assert english <= set(paths)
    assert all(item["url"].startswith(faq_site) for item in items)  # stayed on the site
    by_path = dict(zip(paths, items, strict=True))
    assert "FAQ" in by_path["index.en.html"]["title"]
    assert by_path["index.en.html"]["links"] >= len(english) - 1
    assert all(item["title"] for item in items)


def test_toolkit_script_runs_start_to_finish(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    assert bash is not None
    # The script calls `pooledcrawl`: the one of this interpreter, with this tree's code.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "pooledcrawl"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pooledcrawl "$@"\n')
    launcher.chmod(0o755)
    proc = subprocess.run(
        [bash, str(EXAMPLES / "toolkit.sh")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"),
             "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    # 1. fetch --headers: the status line and headers, then the body
    assert re.search(r"\b200\b", out)
    assert "<!doctype html>" in out.lower() or "<html" in out.lower()
    # 2. parse: the start page's requests (head -3), then the book page's item
    lines = [orjson.loads(line) for line in out.splitlines() if line.startswith("{")]
    requests = [line["request"] for line in lines if "request" in line]
    assert len(requests) == 3 and all(r["callback"] == "parse_book" for r in requests)
    items = [line["item"] for line in lines if "item" in line]
    assert len(items) == 1 and items[0]["title"] and items[0]["price"], out[-2000:]
    # 3. the shell printed the start page's status and title, then the fetched book's
    assert re.search(r"^>>> 200 All books$", out, re.M)
    assert re.search(r"^>>> .+ #1 \S+$", out, re.M)
    # 4. a spider from the template crawled 20 pages or fewer into books.jsonl
    counted = re.search(r"^\s*(\d+) \S*books\.jsonl$", out, re.M)
    assert counted is not None and 0 < int(counted.group(1)) <= 20, out[-2000:]
