"""MkDocs hook: the settings and signals references are generated from the code.

Every page that holds one of the markers below gets its table built from the source
at build time, so the reference cannot drift from the code.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import Any

MARKER = "<!-- settings-reference -->"
SIGNALS_MARKER = "<!-- signals-reference -->"
PACKAGE = Path(__file__).resolve().parents[1] / "src" / "pooledcrawl"
SETTINGS_SOURCE = PACKAGE / "settings.py"
SIGNALS_SOURCE = PACKAGE / "signals.py"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, settings_reference(SETTINGS_SOURCE))
    if SIGNALS_MARKER in markdown:
        markdown = markdown.replace(SIGNALS_MARKER, signals_reference(SIGNALS_SOURCE))
    return markdown


def signals_reference(path: Path) -> str:
    """A table of every module-level ``name = Signal("name", "args: meaning")``."""
    out = ["| Signal | Keyword arguments | When |", "|---|---|---|"]
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if not (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and ast.unparse(node.value.func) == "Signal"
            and len(node.value.args) == 2
        ):
            continue
        name, doc = (ast.literal_eval(arg) for arg in node.value.args)
        args, _, when = str(doc).partition(": ")
        names = ", ".join(f"`{a.strip()}`" for a in args.split(",") if a.strip())
        out.append(f"| `{name}` | {names} | {_cell(when)} |")
    return "\n".join(out) + "\n"


@dataclasses.dataclass
class SettingDoc:
    name: str
    annotation: str
    default: str
    doc: str


def settings_reference(path: Path) -> str:
    """Markdown tables of every ``Settings`` field, grouped by the class's section comments.

    A field whose type is another dataclass of the module or of a package module it
    imports from (``postgres: PostgresSettings``)
    is a nested group: its own table, with dotted names (``postgres.pool_size``)."""
    groups: dict[str, list[SettingDoc]] = {}
    intros: dict[str, str] = {}
    for group, setting, intro in _read_settings(path):
        groups.setdefault(group, []).append(setting)
        if intro:
            intros[group] = intro
    out: list[str] = []
    for group, settings in groups.items():
        out += [f"### {group}", ""]
        if group in intros:
            out += [intros[group], ""]
        out += ["| Setting | Type | Default | What it does |", "|---|---|---|---|"]
        for s in settings:
            out.append(
                # Python-Markdown's tables leave pipes inside code spans alone.
                f"| `{s.name}` | `{s.annotation}` | `{s.default}` | {_cell(s.doc)} |"
            )
        out.append("")
    return "\n".join(out)


def _read_settings(path: Path) -> list[tuple[str, SettingDoc, str]]:
    """(group, setting, the group's introduction) for every field, nested ones dotted."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    trees = _with_imported(ast.parse(source), path.parent)
    classes = {
        node.name: node for tree in trees for node in tree.body if isinstance(node, ast.ClassDef)
    }
    prefixes = {k: v for tree in trees for k, v in _flat_prefixes(tree).items()}
    found: list[tuple[str, SettingDoc, str]] = []
    group = "General"
    for setting, lineno in _fields(classes["Settings"]):
        group = _group_above(lines, lineno, group)
        nested = classes.get(setting.annotation)
        if nested is None:
            found.append((group, setting, ""))
            continue
        name = setting.name
        intro = f"`settings.{name}`: {setting.doc}"
        if name in prefixes:
            intro += (
                f" The old flat names still work: `{prefixes[name]}` and the field's name"
                f" (`-s {prefixes[name]}NAME=...` is `-s {name}.NAME=...`)."
            )
        for field, _ in _fields(nested):
            field.name = f"{name}.{field.name}"
            found.append((f"{group} (`{name}.*`)", field, intro))
    return found


def _with_imported(tree: ast.Module, package: Path) -> list[ast.Module]:
    """``tree`` and the package's modules it imports from: the nested groups
    (``PostgresSettings``) and their ``FLAT_PREFIXES`` live in a module of their own."""
    trees = [tree]
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pooledcrawl."):
            module = package.joinpath(*str(node.module).split(".")[1:]).with_suffix(".py")
            if module.is_file():
                trees.append(ast.parse(module.read_text(encoding="utf-8")))
    return trees


def _fields(cls: ast.ClassDef) -> list[tuple[SettingDoc, int]]:
    """The annotated fields of ``cls``, each with its docstring, and its line."""
    found: list[tuple[SettingDoc, int]] = []
    body = cls.body
    for index, node in enumerate(body):
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
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
        found.append((setting, node.lineno))
    return found


def _flat_prefixes(tree: ast.Module) -> dict[str, str]:
    """The module's ``FLAT_PREFIXES``: a nested group's old flat-name prefix."""
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        if isinstance(target, ast.Name) and target.id == "FLAT_PREFIXES" and node.value:
            return dict(ast.literal_eval(node.value))
    return {}


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
