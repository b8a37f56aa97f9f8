"""Finding, reading, checking and resolving proxy-pool profiles.

Search order: the package's own profiles, then ``--profiles-dir`` (or
``PCRAWL_PROFILES_DIR``); a user profile with the same name wins. Resolution:
``extends`` chain, ``${ENV_VAR}`` expansion, type and range checks, derived
connector limits. Every mistake is a :class:`UsageError` naming the file and key.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from pooledcrawl.errors import UsageError
from pooledcrawl.profiles.schema import (
    CREDENTIAL_KEYS,
    META_KEYS,
    PROXY_LIST_KEYS,
    SECTIONS,
    all_dotted_keys,
    settings_type,
    type_error,
)
from pooledcrawl.proxy.blocks import compile_patterns
from pooledcrawl.proxy.cost import Price
from pooledcrawl.proxy.endpoint import (
    DEFAULT_POOL_SIZE,
    PROXY_KINDS,
    Proxy,
    ProxyConfig,
    ProxyKind,
    SessionConfig,
    expand_env,
    expand_proxy_url,
    has_env_ref,
    parse_proxy_url,
    read_proxy_file,
)
from pooledcrawl.settings import Settings, coerce
from pooledcrawl.sizing import HEADROOM, little_law, session_connector_limit, with_headroom

__all__ = [
    "ENV_DIR",
    "Profile",
    "ProfileSource",
    "find_profiles",
    "load_profile",
    "package_profiles_dir",
    "session_connector_limit",
    "user_profiles_dir",
]

ENV_DIR = "PCRAWL_PROFILES_DIR"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

Tree = dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class ProfileSource:
    name: str
    path: Path
    builtin: bool

    @property
    def origin(self) -> str:
        return "package" if self.builtin else "user"


@dataclasses.dataclass(frozen=True, slots=True)
class Profile:
    """A resolved profile: what it sets, what was derived, and its proxies (masked in repr)."""

    name: str
    source: ProfileSource
    chain: tuple[Path, ...]
    """The files merged into it, the base first (``extends``)."""
    description: str
    settings: Mapping[str, Any]
    """Settings keys and values, derived limits included: the profile layer."""
    derived: Mapping[str, str]
    """Settings keys whose value was derived, with how."""
    latency_ms: float | None
    target_rps: float | None
    proxy: ProxyConfig | None
    """None: the profile connects directly."""
    proxy_kind: ProxyKind = "rotating"
    """The pool type it is tuned for; ``--proxy`` URLs are used that way."""
    credential_vars: tuple[str, ...] = ()
    """Environment variables the proxy credentials come from (names only)."""
    session: SessionConfig | None = None
    """The ``[session]`` table: sticky sessions through a rotating gateway."""
    session_template: str | None = None
    """The session template as written (``${VAR}`` not expanded), for ``profiles show``."""

    @property
    def price(self) -> Price:
        s = self.effective
        return Price(per_gb=s.price_per_gb, per_request=s.price_per_request)

    @property
    def effective(self) -> Settings:
        """Settings with only this profile over the defaults."""
        return Settings.layered((str(self.source.path), self.settings))


# ---- finding -------------------------------------------------------------------------
def package_profiles_dir() -> Path | None:
    """The profiles shipped in the wheel, or the repository's ``profiles/`` in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "data", here.parents[2] / "profiles"):
        if candidate.is_dir():
            return candidate
    return None


def user_profiles_dir(profiles_dir: str | Path | None = None) -> Path | None:
    """``--profiles-dir`` if given, else ``$PCRAWL_PROFILES_DIR``; it must exist."""
    if profiles_dir is not None:
        where, raw = "--profiles-dir", str(profiles_dir)
    else:
        raw = os.environ.get(ENV_DIR, "")
        where = ENV_DIR
        if not raw:
            return None
    path = Path(raw).expanduser()
    if not path.is_dir():
        raise UsageError(f"{where}: profiles directory not found: {path}")
    return path


def _scan(directory: Path, builtin: bool) -> dict[str, ProfileSource]:
    found = {}
    for path in sorted(directory.glob("*.toml")):
        if _NAME.match(path.stem):
            found[path.stem] = ProfileSource(path.stem, path, builtin)
    return found


def find_profiles(profiles_dir: str | Path | None = None) -> dict[str, ProfileSource]:
    """Every profile by name; a user profile shadows a package one of the same name."""
    found: dict[str, ProfileSource] = {}
    package = package_profiles_dir()
    if package is not None:
        found.update(_scan(package, builtin=True))
    user = user_profiles_dir(profiles_dir)
    if user is not None:
        found.update(_scan(user, builtin=False))
    return dict(sorted(found.items()))


# ---- loading -------------------------------------------------------------------------
def load_profile(
    name: str,
    profiles_dir: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    strict_env: bool = True,
) -> Profile:
    """Find and resolve profile ``name``. ``strict_env=False`` tolerates unset variables
    (an empty value), for listing profiles without their credentials at hand."""
    sources = find_profiles(profiles_dir)
    source = sources.get(name)
    if source is None:
        raise UsageError(_unknown_profile(name, sources))
    return resolve(source, sources, env=os.environ if env is None else env, strict_env=strict_env)


def _unknown_profile(name: str, sources: Mapping[str, ProfileSource]) -> str:
    close = difflib.get_close_matches(name, list(sources), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    known = ", ".join(sources) or "none"
    return f"unknown profile {name!r}{hint}; known profiles: {known}"


def resolve(
    source: ProfileSource,
    sources: Mapping[str, ProfileSource],
    *,
    env: Mapping[str, str],
    strict_env: bool = True,
) -> Profile:
    tree, origins, chain = _load_chain(source, sources, ())
    template_shown = tree.get("session", {}).get("template")
    credential_vars = _expand_tree(tree, origins, env, strict_env)
    _check_sizing(tree, origins)
    settings, derived = _to_settings(tree, origins)
    sizing = tree.get("sizing", {})
    session = _session_config(tree.get("session"), origins, source)
    proxy = _proxy_config(tree.get("proxy", {}), origins, source)
    if proxy is not None and session is not None:
        proxy = dataclasses.replace(proxy, session=session)
    return Profile(
        name=source.name,
        source=source,
        chain=chain,
        description=str(tree.get("description", "")),
        settings=settings,
        derived=derived,
        latency_ms=_opt_float(sizing.get("latency_ms")),
        target_rps=_opt_float(sizing.get("target_rps")),
        proxy=proxy,
        proxy_kind=_kind(tree.get("proxy", {}), origins, source),
        credential_vars=tuple(credential_vars),
        session=session,
        session_template=template_shown,
    )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _read(path: Path) -> Tree:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _load_chain(
    source: ProfileSource, sources: Mapping[str, ProfileSource], seen: tuple[Path, ...]
) -> tuple[Tree, dict[str, Path], tuple[Path, ...]]:
    """The file's entries merged over its ``extends`` chain, and which file set each key."""
    path = source.path
    data = _read(path)
    _check_structure(data, path)
    own_origins = {key: path for key in _dotted(data)}
    parent_name = data.get("extends")
    if parent_name is None:
        return data, own_origins, (path,)
    parent = _parent_source(source, parent_name, sources)
    if parent.path in seen or parent.path == path:
        names = " -> ".join(p.stem for p in (*seen, path, parent.path))
        raise UsageError(f"{path}: extends: cycle {names}")
    base, origins, chain = _load_chain(parent, sources, (*seen, path))
    merged = _merge(base, data, origins)
    origins.update(own_origins)
    return merged, origins, (*chain, path)


def _parent_source(
    source: ProfileSource, parent_name: str, sources: Mapping[str, ProfileSource]
) -> ProfileSource:
    if parent_name == source.name:
        # A user profile that extends its own name builds on the package profile it shadows.
        package = package_profiles_dir()
        if (
            not source.builtin
            and package is not None
            and (package / f"{parent_name}.toml").is_file()
        ):
            return ProfileSource(parent_name, package / f"{parent_name}.toml", builtin=True)
        raise UsageError(f"{source.path}: extends: a profile cannot extend itself")
    parent = sources.get(parent_name)
    if parent is None:
        raise UsageError(f"{source.path}: extends: {_unknown_profile(parent_name, sources)}")
    return parent


def _dotted(data: Tree) -> list[str]:
    keys = []
    for key, value in data.items():
        if isinstance(value, dict):
            keys += [f"{key}.{sub}" for sub in value]
        else:
            keys.append(key)
    return keys


def _merge(base: Tree, child: Tree, origins: dict[str, Path]) -> Tree:
    merged: Tree = {}
    for key, value in base.items():
        merged[key] = dict(value) if isinstance(value, dict) and key != "extends" else value
    merged.pop("extends", None)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            table = merged[key]
            if key == "proxy" and any(k in value for k in PROXY_LIST_KEYS):
                for k in PROXY_LIST_KEYS:  # a child's proxy list replaces the parent's
                    table.pop(k, None)
                    origins.pop(f"proxy.{k}", None)
            table.update(value)
        else:
            merged[key] = value
    return merged


# ---- checking ------------------------------------------------------------------------
def _unknown_key(path: Path, dotted: str) -> UsageError:
    close = difflib.get_close_matches(dotted, all_dotted_keys(), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return UsageError(f"{path}: unknown key {dotted!r}{hint}")


def _check_structure(data: Tree, path: Path) -> None:
    """Unknown keys and wrong types, on the file as written (before ``${}`` expansion)."""
    tables = (*SECTIONS, "sizing", "settings", "session")
    for key, value in data.items():
        if key in tables:
            if not isinstance(value, dict):
                raise UsageError(f"{path}: {key}: expected a [{key}] table, got {value!r}")
            for sub, item in value.items():
                _check_entry(path, f"{key}.{sub}", item)
        elif key in META_KEYS:
            _check_entry(path, key, value)
        else:
            raise _unknown_key(path, key)


def _check_entry(path: Path, dotted: str, value: Any) -> None:
    section, _, key = dotted.partition(".")
    if dotted in META_KEYS:
        tp = META_KEYS[dotted][0]
    elif section == "settings":
        if key not in Settings.__dataclass_fields__:
            raise _unknown_key(path, dotted)
        tp = settings_type(key)
    elif section in SECTIONS and key in SECTIONS[section]:
        tp = settings_type(SECTIONS[section][key])
    else:
        raise _unknown_key(path, dotted)
    if isinstance(value, str) and has_env_ref(value) and tp is not str:
        return  # checked after expansion
    problem = type_error(tp, value)
    if problem is not None:
        if section == "proxy" and key not in SECTIONS["proxy"]:
            problem = problem.split(", got", 1)[0]  # never echo what may be a credential
        raise UsageError(f"{path}: {dotted}: {problem}")


def _expand_tree(
    tree: Tree, origins: Mapping[str, Path], env: Mapping[str, str], strict: bool
) -> list[str]:
    """Expand ``${VAR}`` in every string, in place; returns the credential variables."""
    credential_vars: list[str] = []

    def expand(dotted: str, value: Any) -> Any:
        if isinstance(value, str):
            if not has_env_ref(value):
                return value
            if dotted in ("proxy.url", "proxy.urls"):
                expanded, missing = expand_proxy_url(value, env)
            else:
                expanded, missing = expand_env(value, env)
            if missing and strict:
                where = origins.get(dotted, "profile")
                raise UsageError(f"{where}: {dotted}: environment variable {missing[0]} is not set")
            if dotted in CREDENTIAL_KEYS or dotted.startswith(
                ("proxy.url", "proxy.file", "session.template")
            ):
                credential_vars.extend(m.group(1) for m in _env_refs(value))
            return expanded
        if isinstance(value, list):
            return [expand(dotted, item) for item in value]
        if isinstance(value, dict):
            return {k: expand(dotted, v) for k, v in value.items()}
        return value

    for key, value in list(tree.items()):
        if isinstance(value, dict):
            tree[key] = {sub: expand(f"{key}.{sub}", item) for sub, item in value.items()}
        else:
            tree[key] = expand(key, value)
    return sorted(set(credential_vars))


def _env_refs(text: str) -> list[re.Match[str]]:
    return list(re.finditer(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text))


def _to_settings(tree: Tree, origins: Mapping[str, Path]) -> tuple[dict[str, Any], dict[str, str]]:
    """The profile's entries as Settings keys, checked, with the derived connector limits."""
    layer: dict[str, Any] = {}
    dotted_of: dict[str, str] = {}
    for section, table in SECTIONS.items():
        for key, value in tree.get(section, {}).items():
            if key in table:
                layer[table[key]] = value
                dotted_of[table[key]] = f"{section}.{key}"
    for key, value in tree.get("settings", {}).items():
        if key in layer:
            origin = origins.get(f"settings.{key}", "profile")
            raise UsageError(
                f"{origin}: settings.{key}: already set as {dotted_of[key]}; set it once"
            )
        layer[key] = value
        dotted_of[key] = f"settings.{key}"

    def where(key: str) -> str:
        dotted = dotted_of[key]
        return f"{origins.get(dotted, 'profile')}: {dotted}"

    for key, value in layer.items():
        try:
            layer[key] = coerce(key, value, source=where(key))
        except UsageError as exc:
            raise UsageError(_rename(str(exc), key, dotted_of[key])) from None
        # ``${}`` values are type-checked only now, after expansion
        problem = type_error(settings_type(key), layer[key])
        if problem is not None:
            raise UsageError(f"{where(key)}: {problem}")

    start, top = layer.get("domain_concurrency"), layer.get("domain_concurrency_max")
    if start is not None and top is not None and start > top:
        raise UsageError(
            f"{where('domain_concurrency')} ({start}) is above "
            f"{dotted_of['domain_concurrency_max']} ({top}): an impossible range"
        )

    if "ban_patterns" in layer:  # a bad regex is the profile's error, not the crawl's
        compile_patterns(layer["ban_patterns"], where=where("ban_patterns"))
    derived = _derive_limits(tree.get("sizing", {}), layer)
    try:
        Settings().merged(layer, source="profile")
    except UsageError as exc:
        message = str(exc).removeprefix("profile: ")
        for key in sorted(dotted_of, key=len, reverse=True):
            if f"setting {key}" in message:
                raise UsageError(
                    f"{where(key)}: {message.replace(f'setting {key}: ', '')}"
                ) from None
        path = next(iter(origins.values()), "profile")
        raise UsageError(f"{path}: {message}") from None
    return layer, derived


def _rename(message: str, key: str, dotted: str) -> str:
    return message.replace(f"setting {key}: ", "")


def _check_sizing(tree: Tree, origins: Mapping[str, Path]) -> None:
    """``[sizing]`` figures: positive numbers (checked after ``${}`` expansion)."""
    sizing = tree.get("sizing", {})
    for key, value in list(sizing.items()):
        where = f"{origins.get(f'sizing.{key}', 'profile')}: sizing.{key}"
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None:
            raise UsageError(f"{where}: expected a number, got {value!r}")
        if number <= 0:
            raise UsageError(f"{where}: must be > 0, got {value!r}")
        sizing[key] = number


def _derive_limits(sizing: Mapping[str, Any], layer: dict[str, Any]) -> dict[str, str]:
    """``limit_per_host`` unless set: connections in use = arrival rate * time each
    is held (Little's Law), plus 30% headroom."""
    derived: dict[str, str] = {}
    latency_ms, rps = sizing.get("latency_ms"), sizing.get("target_rps")
    if latency_ms is None or rps is None:
        return derived
    latency = float(latency_ms) / 1000
    need = little_law(float(rps), latency)
    if layer.get("connector_limit_per_host") is None:
        per_host = with_headroom(need, HEADROOM)
        layer["connector_limit_per_host"] = per_host
        derived["connector_limit_per_host"] = (
            f"Little's Law: {rps:g} rps x {latency:g} s = {need} in flight, +30% = {per_host}"
        )
    return derived


# ---- sessions ------------------------------------------------------------------------
def _session_config(
    table: Mapping[str, Any] | None, origins: Mapping[str, Path], source: ProfileSource
) -> SessionConfig | None:
    if table is None:
        return None
    where = origins.get("session.template", source.path)
    template = table.get("template")
    if not template:
        raise UsageError(
            f'{where}: session.template: required, e.g. "{{username}}-session-{{session}}"'
        )
    try:
        return SessionConfig(
            template=template,
            max_age=_opt_float(table.get("max_age")),
            max_uses=table.get("max_uses"),
            pool_size=table.get("pool_size", DEFAULT_POOL_SIZE),
            per_domain=table.get("per_domain", True),
        )
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None


# ---- proxies -------------------------------------------------------------------------
def _kind(
    table: Mapping[str, Any], origins: Mapping[str, Path], source: ProfileSource
) -> ProxyKind:
    kind = table.get("kind", "rotating")
    if kind not in PROXY_KINDS:
        where = origins.get("proxy.kind", source.path)
        raise UsageError(f"{where}: proxy.kind: expected 'rotating' or 'static', got {kind!r}")
    return cast(ProxyKind, kind)


def _proxy_config(
    table: Mapping[str, Any], origins: Mapping[str, Path], source: ProfileSource
) -> ProxyConfig | None:
    def where(key: str) -> str:
        return f"{origins.get(f'proxy.{key}', source.path)}: proxy.{key}"

    kind = _kind(table, origins, source)
    username, password = table.get("username") or None, table.get("password") or None
    proxies: list[Proxy] = []
    if table.get("url"):
        proxies.append(
            parse_proxy_url(table["url"], where=where("url"), username=username, password=password)
        )
    for i, url in enumerate(table.get("urls", [])):
        proxies.append(
            parse_proxy_url(
                url, where=f"{where('urls')}[{i}]", username=username, password=password
            )
        )
    if table.get("file"):
        base = origins.get("proxy.file", source.path).parent
        file = base / Path(table["file"]).expanduser()
        try:
            listed = read_proxy_file(file)
        except UsageError as exc:
            raise UsageError(f"{where('file')}: {exc}") from None
        proxies += [
            p if p.has_credentials else dataclasses.replace(p, username=username, password=password)
            for p in listed
        ]
    if not proxies:
        if username or password:
            key = "username" if username else "password"
            raise UsageError(f"{where(key)}: credentials given but no proxy URL (proxy.url)")
        return None
    return ProxyConfig(kind, tuple(proxies), source=str(source.path))
