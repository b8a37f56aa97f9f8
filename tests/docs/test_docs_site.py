"""The documentation site: the generated settings reference, a strict build, and what
headless Chromium shows of it.

The build needs the ``docs`` extra; without it these tests skip unless
``PCRAWL_REQUIRE_SERVICES`` is set (CI installs the extra, so there they run).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from needs import require_tool

import pooledcrawl
import pooledcrawl.ext
import pooledcrawl.signals
from pooledcrawl import Settings

ROOT = Path(__file__).resolve().parents[2]


def _require(what: str) -> None:
    message = f"{what} is not installed"
    if os.environ.get("PCRAWL_REQUIRE_SERVICES"):
        pytest.fail(message + " and PCRAWL_REQUIRE_SERVICES is set")
    pytest.skip(message)


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_settings_reference_has_every_field_with_its_default_and_doc() -> None:
    table = _hooks().settings_reference(ROOT / "src" / "pooledcrawl" / "settings.py")
    rows = {line.split("|")[1].strip(" `"): line for line in table.splitlines() if "| `" in line}
    assert set(rows) == set(Settings.keys())
    assert "`64`" in rows["concurrency"]
    assert "Global cap on requests in flight" in rows["concurrency"]
    assert "[408, 429, 500, 502, 503, 504, 522, 524]" in rows["retry_http_codes"]
    assert "`int | None`" in rows["max_pages"]
    # Grouped by the section comments of the class.
    assert (
        table.index("### Concurrency") < table.index("`concurrency`") < table.index("### Retries")
    )
    # A nested group is a table of its own, with dotted names and its old flat names.
    postgres = table.index("### PostgreSQL (`postgres.*`)")
    assert postgres < table.index("| `postgres.pool_size` | `int | None` | `None` |")
    assert "`-s pg_NAME=...` is `-s postgres.NAME=...`" in table[postgres:]
    assert "Rows per insert batch." in rows["postgres.batch_size"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if importlib.util.find_spec("mkdocs") is None:
        _require("mkdocs (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_strict_build_has_every_page_and_the_generated_reference(site: Path) -> None:
    settings_page = (site / "settings.html").read_text(encoding="utf-8")
    keys = Settings.keys()  # nested ones dotted: postgres.pool_size
    for key in keys:
        assert f"<code>{key}</code>" in settings_page
    assert "<!-- settings-reference -->" not in settings_page
    # The benchmark figures are part of the site and shown where they belong.
    assert (site / "img" / "throughput.svg").is_file()
    assert (site / "img" / "adaptive-timeline.svg").is_file()
    assert 'src="img/throughput.svg"' in (site / "index.html").read_text(encoding="utf-8")


def test_api_reference_documents_the_whole_public_api_and_every_protocol(site: Path) -> None:
    pages = {
        page.name: page.read_text(encoding="utf-8") for page in (site / "reference").glob("*.html")
    }
    everything = "".join(pages.values())
    # mkdocstrings gives each documented object an anchor named by its dotted path.
    public = [name for name in pooledcrawl.__all__ if not name.startswith("_")]
    for name in public:
        assert f'id="pooledcrawl.{name}"' in everything, name
    for name in pooledcrawl.ext.__all__:
        assert f'id="pooledcrawl.ext.{name}"' in everything, name
    # Sphinx roles in docstrings were turned into code, not shown verbatim.
    assert ":class:`" not in everything and ":meth:`" not in everything
    signals = pages["signals.html"]
    assert "<!-- signals-reference -->" not in signals
    for value in vars(pooledcrawl.signals).values():
        if isinstance(value, pooledcrawl.signals.Signal):
            assert f"<td><code>{value.name}</code></td>" in signals, value.name


@pytest.mark.parametrize(
    ("page", "has_code"),
    [("index.html", True), ("getting-started.html", True), ("reference/spiders.html", False)],
)
def test_chromium_renders_navigation_and_highlighted_code(
    site: Path, page: str, has_code: bool, tmp_path: Path
) -> None:
    chromium = require_tool("chromium")
    proc = subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=3000", "--dump-dom", (site / page).as_uri(),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    dom = proc.stdout
    assert "<html" in dom, proc.stderr[-2000:]
    # Material's navigation: a link to every page of the nav, drawn by the theme.
    assert dom.count('class="md-nav__link') >= 15
    assert "Scaling out on Redis" in dom
    if not has_code:
        assert 'class="doc doc-heading' in dom  # mkdocstrings' rendered API entries
        return
    # Code blocks went through Pygments: token spans inside a highlight block.
    assert 'class="highlight' in dom
    assert re.search(r'<span class="(k|kn|nb|nf|c1|s1|s2|o)">', dom)
    # The theme's script ran: it adds a copy button to every code block.
    assert "md-code__button" in dom
