"""The import-cycle check CI runs (.ci/check_imports.py): it passes on this tree and
fails on a cycle, whether the import is at module level, deferred or type-only."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import pytest

import pooledcrawl

CHECK = Path(__file__).resolve().parents[1] / ".ci" / "check_imports.py"


def checker() -> object:
    spec = importlib.util.spec_from_file_location("check_imports", CHECK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_this_tree_has_no_import_cycle(capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(pooledcrawl.__file__).parent
    assert checker().main(["check", str(root)]) == 0  # type: ignore[attr-defined]
    assert "no import cycles" in capsys.readouterr().out


@pytest.mark.parametrize(
    "back_import",
    [
        "from pooledcrawl.a import thing",
        "def f():\n    from pooledcrawl.a import thing",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pooledcrawl import a",
        "from . import a",
    ],
)
def test_a_cycle_fails_the_check(
    tmp_path: Path, back_import: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg = tmp_path / "pooledcrawl"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pooledcrawl.sub.b import other\nthing = 1\n")
    (pkg / "sub" / "__init__.py").write_text("")
    back = back_import.replace("from . import", "from .. import")
    (pkg / "sub" / "b.py").write_text(textwrap.dedent(back) + "\nother = 2\n")
    assert checker().main(["check", str(pkg)]) == 1  # type: ignore[attr-defined]
    out = capsys.readouterr().out
    assert "pooledcrawl.a -> pooledcrawl.sub.b -> pooledcrawl.a" in out
    assert "subpackage cycle" in out
