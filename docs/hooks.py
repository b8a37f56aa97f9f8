"""MkDocs hook: the settings reference is generated from the ``Settings`` dataclass.

Every page that holds the marker below gets the table built from the source at
build time, so the reference cannot drift from the code.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import Any

MARKER = "<!-- settings-reference -->"
SETTINGS_SOURCE = Path(__file__).resolve().parents[1] / "src" / "pooledcrawl" / "settings.py"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, settings_reference(SETTINGS_SOURCE))


@dataclasses.dataclass
class SettingDoc:
    name: str
    annotation: str
    default: str
    doc: str


def settings_reference(path: Path) -> str:
    """Markdown tables of every ``Settings`` field, grouped by the class's section comments."""
    groups: dict[str, list[SettingDoc]] = {}
    for group, setting in _read_settings(path):
        groups.setdefault(group, []).append(setting)
    out: list[str] = []
    for group, settings in groups.items():
        out += [
            f"### {group}",
            "",
            "| Setting | Type | Default | What it does |",
            "|---|---|---|---|",
        ]
        for s in settings:
            out.append(
                # Python-Markdown's tables leave pipes inside code spans alone.
                f"| `{s.name}` | `{s.annotation}` | `{s.default}` | {_cell(s.doc)} |"
            )
        out.append("")
    return "\n".join(out)


def _read_settings(path: Path) -> list[tuple[str, SettingDoc]]:
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source)
    cls = next(
        node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Settings"
    )
    found: list[tuple[str, SettingDoc]] = []
    group = "General"
    body = cls.body
    for index, node in enumerate(body):
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        group = _group_above(lines, node.lineno, group)
        doc = ""
        following = body[index + 1] if index + 1 < len(body) else None
        if (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            doc = " ".join(following.value.value.split())
        setting = SettingDoc(
            name=node.target.id,
            annotation=ast.unparse(node.annotation),
            default=_default(node.value),
            doc=doc,
        )
        found.append((group, setting))
    return found


def _group_above(lines: list[str], lineno: int, current: str) -> str:
    """A ``# Section`` comment line directly above a field (blank lines aside) opens a group."""
    i = lineno - 2
    while i >= 0 and not lines[i].strip():
        i -= 1
    match = re.fullmatch(r"\s{4}# ([A-Z].*)", lines[i]) if i >= 0 else None
    return match.group(1).split(" (")[0] if match else current


def _default(value: ast.expr | None) -> str:
    if value is None:
        return "required"
    if isinstance(value, ast.Call) and ast.unparse(value.func).endswith("field"):
        for keyword in value.keywords:
            if keyword.arg == "default_factory":
                factory = keyword.value
                if isinstance(factory, ast.Lambda):
                    return ast.unparse(factory.body)
                return f"{ast.unparse(factory)}()"
            if keyword.arg == "default":
                return ast.unparse(keyword.value)
    return ast.unparse(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
