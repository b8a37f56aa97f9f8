"""``pooledcrawl profiles list`` and ``pooledcrawl profiles show NAME``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from typing import Any

from pooledcrawl.errors import UsageError
from pooledcrawl.profiles import Profile, find_profiles, load_profile, session_connector_limit
from pooledcrawl.profiles.schema import SECTIONS
from pooledcrawl.proxy.endpoint import (
    ProxyConfig,
    expand_proxy_url,
    parse_proxy_url,
    read_proxy_file,
)
from pooledcrawl.proxy.masking import SecretMasker
from pooledcrawl.spider import Spider

__all__ = [
    "add_parser",
    "add_proxy_options",
    "job_profile",
    "render_show",
    "render_table",
    "run",
]

log = logging.getLogger("pooledcrawl")


# ---- options of `crawl` (and of distributed workers) -----------------------------------
def add_proxy_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("profiles and proxies")
    group.add_argument(
        "--profile",
        metavar="NAME[,NAME...]",
        help="proxy-pool profile: datacenter, residential, mobile, static or your own "
        "(default: the spider's `profile`); several, cheapest first, are tiers: each "
        "domain moves up a tier when blocked",
    )
    group.add_argument(
        "--profiles-dir",
        metavar="DIR",
        help="your own profiles (default: $PCRAWL_PROFILES_DIR); same name wins",
    )
    group.add_argument(
        "--proxy",
        action="append",
        default=[],
        metavar="URL",
        help="proxy for this job (repeatable); http://, https://, socks5://; "
        "'${VAR}' is expanded, so credentials can stay out of the command line",
    )
    group.add_argument(
        "--proxy-file",
        metavar="FILE",
        help="static proxy list: one URL per line (# comments, ${VAR} expanded)",
    )


def job_profile(
    args: argparse.Namespace, spider_cls: type[Spider]
) -> tuple[Mapping[str, Any] | None, ProxyConfig | None]:
    """The profile's settings layer and the job's proxies. ``--profile`` wins over the
    spider's ``profile``; ``--proxy``/``--proxy-file`` replace the profile's proxies."""
    name = getattr(args, "profile", None)
    where = "--profile"
    if not name and spider_cls.profile:
        name, where = spider_cls.profile, f"{spider_cls.__name__}.profile"
    if name and "," in name:
        name = tier_names(name, where)[0]
    profile = _load(name, where, args) if name else None
    proxies = profile.proxy if profile else None
    urls: list[str] = getattr(args, "proxy", None) or []
    file: str | None = getattr(args, "proxy_file", None)
    if urls and file:
        raise UsageError("use --proxy or --proxy-file, not both")
    if file:
        proxies = ProxyConfig("static", tuple(read_proxy_file(file)), source=f"--proxy-file {file}")
    elif urls:
        parsed = []
        for url in urls:
            expanded, missing = expand_proxy_url(url)
            if missing:
                raise UsageError(f"--proxy: environment variable {missing[0]} is not set")
            parsed.append(parse_proxy_url(expanded, where="--proxy"))
        kind = profile.proxy_kind if profile else "rotating"
        session = profile.session if profile else None
        proxies = ProxyConfig(kind, tuple(parsed), source="--proxy", session=session)
    if profile is not None and proxies is None:
        log.warning(
            "profile %s sets no proxy: connecting directly (set [proxy] url, or use --proxy)",
            profile.name,
        )
    return (profile.settings if profile else None), proxies


def _load(name: str, where: str, args: argparse.Namespace) -> Profile:
    try:
        return load_profile(name, getattr(args, "profiles_dir", None))
    except UsageError as exc:
        if str(exc).startswith("unknown profile"):
            raise UsageError(f"{where}: {exc}") from None
        raise


def tier_names(text: str, where: str = "--profile") -> list[str]:
    """``a,b,c``: the tiers, cheapest first; each named once."""
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        raise UsageError(f"{where}: empty profile name in {text!r}")
    if len(set(names)) != len(names):
        raise UsageError(f"{where}: a profile is listed twice in {text!r}")
    return names


def extra_tiers(args: argparse.Namespace) -> list[Profile]:
    """The profiles after the first of ``--profile a,b,c`` (none for one profile)."""
    text = getattr(args, "profile", None) or ""
    if "," not in text:
        return []
    if getattr(args, "proxy", None) or getattr(args, "proxy_file", None):
        raise UsageError(
            "--proxy and --proxy-file cannot be combined with several --profile tiers: "
            "give each tier's proxies in its profile's [proxy] table"
        )
    return [_load(name, "--profile", args) for name in tier_names(text)[1:]]


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
        kind = row.proxy.kind if row.proxy else row.proxy_kind
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
    lines += _session_lines(profile)
    return "\n".join(lines)


def _session_lines(profile: Profile) -> list[str]:
    """The ``[session]`` table; the template as written, any credential in it masked."""
    session = profile.session
    if session is None:
        return ["", "[session]", "# template = (not set): no sticky sessions"]
    secrets = profile.proxy.secrets if profile.proxy else ()
    template = SecretMasker(secrets).mask(profile.session_template or session.template)
    where = session.field
    return [
        "",
        "[session]",
        _line("template", template, f"the session id goes into the proxy {where}"),
        _line("max_age", session.max_age, "" if session.max_age else "no age limit"),
        _line("max_uses", session.max_uses, "" if session.max_uses else "no use limit"),
        _line("pool_size", session.pool_size, ""),
        _line("per_domain", session.per_domain, ""),
    ]


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
            f'kind = "{profile.proxy_kind}"',
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
