"""``pooledcrawl profiles list`` and ``pooledcrawl profiles show NAME``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pooledcrawl.errors import UsageError
from pooledcrawl.profiles import Profile, find_profiles, load_profile, session_connector_limit
from pooledcrawl.profiles.schema import SECTIONS

__all__ = ["add_parser", "render_show", "render_table", "run"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("profiles", help="list and inspect proxy-pool profiles")
    sub = parser.add_subparsers(dest="profiles_command", metavar="ACTION")
    sub.required = True
    listing = sub.add_parser("list", help="a table of the profiles found")
    show = sub.add_parser("show", help="a profile's effective values (credentials masked)")
    show.add_argument("name", help="profile name, e.g. residential")
    for p in (listing, show):
        p.add_argument(
            "--profiles-dir",
            metavar="DIR",
            help="your own profiles (default: $PCRAWL_PROFILES_DIR); same name wins",
        )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.profiles_command == "list":
        return _list(args.profiles_dir)
    profile = load_profile(args.name, args.profiles_dir)
    print(render_show(profile))
    return 0


def _list(profiles_dir: str | None) -> int:
    sources = find_profiles(profiles_dir)
    if not sources:
        raise UsageError("no profiles found")
    rows: list[Profile | tuple[str, str, str]] = []
    broken = 0
    for name, source in sources.items():
        try:
            rows.append(load_profile(name, profiles_dir, strict_env=False))
        except UsageError as exc:
            broken += 1
            rows.append((name, source.origin, str(exc)))
    print(render_table(rows))
    for row in rows:
        if isinstance(row, tuple):
            print(f"pooledcrawl: error: {row[2]}", file=sys.stderr)
    return 2 if broken else 0


def render_table(rows: list[Profile | tuple[str, str, str]]) -> str:
    """The ``profiles list`` table; a (name, origin, error) row for a broken profile."""
    header = ("PROFILE", "FROM", "KIND", "P50", "START->MAX", "PER PROXY", "RETRIES", "PROXY")
    table: list[tuple[str, ...]] = [header]
    notes: list[str] = []
    for row in rows:
        if isinstance(row, tuple):
            name, origin, _error = row
            table.append((name, origin, "invalid", "-", "-", "-", "-", "-"))
            continue
        s = row.effective
        kind = row.proxy.kind if row.proxy else _kind_of(row)
        table.append(
            (
                row.name,
                row.source.origin,
                kind,
                "-" if row.latency_ms is None else f"{row.latency_ms:g} ms",
                f"{s.domain_start}->{s.domain_max}",
                "-" if s.proxy_concurrency is None else str(s.proxy_concurrency),
                str(s.max_retries),
                _proxy_summary(row),
            )
        )
        if row.description:
            notes.append(f"{row.name}: {row.description}")
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table
    ]
    return "\n".join([*lines, "", *notes])


def _kind_of(profile: Profile) -> str:
    # A profile without proxies still says which pool type it is tuned for.
    return "static" if profile.settings.get("proxy_concurrency") else "rotating"


def _proxy_summary(profile: Profile) -> str:
    if profile.proxy is None:
        return "none (direct)"
    proxies = profile.proxy.proxies
    if len(proxies) == 1:
        return proxies[0].masked
    return f"{len(proxies)} proxies"


def render_show(profile: Profile) -> str:
    """Every key's effective value after ``extends``, ``${}`` and derivation; TOML-like."""
    s = profile.effective
    lines = [f"# profile {profile.name} ({profile.source.origin}: {profile.source.path})"]
    if len(profile.chain) > 1:
        lines.append("# extends: " + " -> ".join(str(p) for p in profile.chain))
    if profile.description:
        lines.append(f'description = "{profile.description}"')
    lines += ["", "[sizing]"]
    for key, value in (("latency_ms", profile.latency_ms), ("target_rps", profile.target_rps)):
        lines.append(_line(key, value, "" if value is not None else "not set: nothing derived"))
    for section, table in SECTIONS.items():
        if section == "proxy":
            continue
        lines += ["", f"[{section}]"]
        for key, setting in table.items():
            value = getattr(s, setting)
            if setting == "connector_limit" and value is None:
                value = session_connector_limit(s)
            lines.append(_line(key, value, _note(profile, s, setting)))
    lines += ["", "[proxy]"]
    lines += _proxy_lines(profile)
    for key, setting in SECTIONS["proxy"].items():
        lines.append(_line(key, getattr(s, setting), _note(profile, s, setting)))
    return "\n".join(lines)


def _note(profile: Profile, s: Any, setting: str) -> str:
    if setting in profile.derived:
        return "derived: " + profile.derived[setting]
    if setting == "connector_limit" and s.connector_limit is None:
        limit = session_connector_limit(s)
        per = "per-proxy cap" if s.proxy_concurrency is not None else "concurrency.global"
        return f"derived at run time: {per} +30% = {limit}, per session (one per proxy)"
    if setting not in profile.settings:
        return "default"
    return ""


def _proxy_lines(profile: Profile) -> list[str]:
    config = profile.proxy
    if config is None:
        return [
            f'kind = "{_kind_of(profile)}"',
            "urls = []  # none: connects directly (use --proxy or --proxy-file)",
        ]
    lines = [f'kind = "{config.kind}"', "urls = ["]
    lines += [f'  "{proxy.masked}",' for proxy in config.proxies]
    lines.append("]")
    if any(p.has_credentials for p in config.proxies):
        refs = ", ".join("${" + v + "}" for v in profile.credential_vars)
        source = f"from {refs}" if refs else "written in the profile: prefer ${ENV_VAR}"
        lines.append(f'credentials = "***"  # {source}')
    return lines


def _line(key: str, value: Any, note: str) -> str:
    text = f"{key} = {_toml(value)}" if value is not None else f"# {key} = (not set)"
    if key == "max_response_size" and isinstance(value, int):
        note = note or f"{value / 1024 / 1024:g} MiB"
    if key == "limit_per_host" and value is None:
        note = note or "no per-host cap"
    return f"{text:<32}  # {note}" if note else text


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return f"{value:g}" if value != int(value) else f"{int(value)}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return str(value)
