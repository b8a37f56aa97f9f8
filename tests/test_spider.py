"""The Spider base class and load_spider_class(target)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pooledcrawl import Request, Spider, UsageError
from pooledcrawl.spider import load_spider_class

ONE = """
from pooledcrawl import Spider

class Alpha(Spider):
    name = "alpha"
    start_urls = ["http://127.0.0.1:1/"]
"""

TWO = """
from pooledcrawl import Spider

class Alpha(Spider):
    name = "alpha"

class Beta(Alpha):
    pass
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_load_from_a_file(tmp_path: Path) -> None:
    cls = load_spider_class(str(write(tmp_path / "one.py", ONE)))
    assert cls.__name__ == "Alpha" and issubclass(cls, Spider) and cls.name == "alpha"


def test_load_from_a_file_with_a_class_name(tmp_path: Path) -> None:
    path = write(tmp_path / "two.py", TWO)
    assert load_spider_class(f"{path}:Beta").__name__ == "Beta"
    assert load_spider_class(f"{path}:Alpha").__name__ == "Alpha"


def test_load_from_a_relative_file_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "rel.py", ONE)
    monkeypatch.chdir(tmp_path)
    assert load_spider_class("rel.py").__name__ == "Alpha"


def test_load_from_a_package_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "spiderpkg_t" / "__init__.py", "")
    write(tmp_path / "spiderpkg_t" / "spiders.py", TWO)
    monkeypatch.syspath_prepend(str(tmp_path))
    cls = load_spider_class("spiderpkg_t.spiders:Beta")
    assert cls.__name__ == "Beta" and cls.__module__ == "spiderpkg_t.spiders"
    with pytest.raises(UsageError, match="several Spider subclasses"):
        load_spider_class("spiderpkg_t.spiders")


def test_imported_spiders_are_not_candidates(tmp_path: Path) -> None:
    # A spider imported from elsewhere does not make the choice ambiguous.
    write(tmp_path / "base_t.py", ONE)
    path = write(
        tmp_path / "child.py",
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from base_t import Alpha
        class Child(Alpha):
            name = "child"
        """,
    )
    assert load_spider_class(str(path)).__name__ == "Child"


@pytest.mark.parametrize(
    ("name", "text", "suffix", "message"),
    [
        ("missing.py", None, "", "spider file not found"),
        ("syntax.py", "class X(:\n    pass\n", "", r"syntax\.py:1: syntax error"),
        ("empty.py", "x = 1\n", "", "no Spider subclass found"),
        ("two.py", TWO, "", r"several Spider subclasses \(Alpha, Beta\); pick one with :Name"),
        ("one.py", ONE, ":Gamma", "no Spider subclass named 'Gamma'"),
        ("one.py", ONE + "\nNotSpider = int\n", ":NotSpider", "no Spider subclass named"),
        ("raises.py", "raise RuntimeError('bad config')\n", "", "RuntimeError: bad config"),
        ("imports.py", "import no_such_module_xyz\n", "", "no_such_module_xyz"),
    ],
)
def test_file_errors_are_one_line_usage_errors(
    tmp_path: Path, name: str, text: str | None, suffix: str, message: str
) -> None:
    path = tmp_path / name
    if text is not None:
        write(path, text)
    with pytest.raises(UsageError, match=message) as info:
        load_spider_class(f"{path}{suffix}")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("module_text", "target", "message"),
    [
        (
            None,
            "no_such_pkg_xyz.spiders:X",
            "cannot import spider module 'no_such_pkg_xyz.spiders'",
        ),
        ("class X(:\n", "badmod_syntax_t:X", "syntax error"),
        ("raise RuntimeError('boom at import')\n", "badmod_raises_t:X", "boom at import"),
        (ONE, "goodmod_t:Missing", "no Spider subclass named 'Missing'"),
    ],
)
def test_module_errors_are_one_line_usage_errors(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    module_text: str | None,
    target: str,
    message: str,
) -> None:
    if module_text is not None:
        write(tmp_path / (target.split(":")[0] + ".py"), module_text)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UsageError, match=message) as info:
        load_spider_class(target)
    assert "\n" not in str(info.value)


# ---- the Spider base class ---------------------------------------------------------------


def test_arguments_become_attributes() -> None:
    class Shop(Spider):
        category = "all"

    spider = Shop(category="books", start="http://127.0.0.1:1/")
    assert spider.category == "books"
    assert spider.start == "http://127.0.0.1:1/"  # type: ignore[attr-defined]
    assert Shop.category == "all"  # the class is untouched
    assert spider.name == "shop"  # defaults to the lower-cased class name
    assert spider.state == {}


async def test_default_start_yields_start_urls_with_dont_filter() -> None:
    class Seeds(Spider):
        start_urls = ["http://127.0.0.1:1/a", "http://127.0.0.1:1/b"]

    requests = [r async for r in Seeds().start()]
    assert [r.url for r in requests] == Seeds.start_urls
    assert all(isinstance(r, Request) and r.dont_filter and r.callback is None for r in requests)


def test_parse_must_be_defined() -> None:
    with pytest.raises(NotImplementedError, match=r"Spider\.parse"):
        Spider().parse(None)  # type: ignore[arg-type]
