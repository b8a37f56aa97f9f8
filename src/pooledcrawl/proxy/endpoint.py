"""Proxy endpoints: parsing proxy URLs, and keeping their credentials out of sight.

A :class:`Proxy` knows its credentials but never shows them: its ``repr``,
``label`` and ``masked`` forms carry only the scheme, host and port. The full
URL (``Proxy.url``) is built on demand for the transport, which sends the
credentials to that proxy alone.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote, urlsplit

from pooledcrawl.errors import UsageError

__all__ = [
    "PROXY_KINDS",
    "SCHEMES",
    "Proxy",
    "ProxyConfig",
    "ProxyKind",
    "SessionConfig",
    "expand_env",
    "expand_proxy_url",
    "parse_proxy_url",
    "read_proxy_file",
]

ProxyKind = Literal["rotating", "static"]
PROXY_KINDS: tuple[ProxyKind, ...] = ("rotating", "static")

#: scheme -> default port. socks5h resolves target names at the proxy.
SCHEMES: dict[str, int] = {
    "http": 80,
    "https": 443,
    "socks4": 1080,
    "socks5": 1080,
    "socks5h": 1080,
}

#: ``{field}`` in a session template
_FIELD = re.compile(r"\{([^{}]*)\}")
DEFAULT_POOL_SIZE = 50

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(text: str, env: Mapping[str, str] | None = None) -> tuple[str, list[str]]:
    """``text`` with each ``${NAME}`` replaced from ``env``; also the names that are unset.

    Only the braced form is expanded, so a literal ``$`` in a password needs no escaping.
    """
    env = os.environ if env is None else env
    missing: list[str] = []

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        value = env.get(name)
        if value is None:
            missing.append(name)
            return ""
        return value

    return _ENV_REF.sub(sub, text), missing


def expand_proxy_url(text: str, env: Mapping[str, str] | None = None) -> tuple[str, list[str]]:
    """:func:`expand_env` for a proxy URL: values that land in the credentials part are
    percent-encoded, so a password with ``@``, ``:`` or ``/`` needs no care."""
    scheme, sep, rest = text.partition("://")
    if not sep or "@" not in rest:
        return expand_env(text, env)
    userinfo, _, hostpart = rest.rpartition("@")
    env = os.environ if env is None else env
    quoted = {name: quote(value, safe="") for name, value in env.items() if name in userinfo}
    user_text, missing = expand_env(userinfo, quoted)
    host_text, missing_host = expand_env(hostpart, env)
    head, missing_head = expand_env(scheme, env)
    return f"{head}://{user_text}@{host_text}", missing_head + missing + missing_host


def has_env_ref(text: str) -> bool:
    return _ENV_REF.search(text) is not None


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class Proxy:
    """One proxy endpoint. Its credentials appear only in :attr:`url`."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    #: set by :class:`ProxyConfig` to tell apart two entries on one host and port
    suffix: str = ""

    @property
    def has_credentials(self) -> bool:
        return bool(self.username or self.password)

    @property
    def label(self) -> str:
        """``scheme://host:port`` (plus ``#n`` for a repeat): safe for logs, stats and keys."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.suffix}"

    @property
    def masked(self) -> str:
        """The URL with its credentials replaced by ``***``."""
        if not self.has_credentials:
            return self.label
        return self.label.replace("://", "://***:***@", 1)

    @property
    def url(self) -> str:
        """The full URL, credentials included: for the transport only, never for output."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        auth = ""
        if self.has_credentials:
            auth = f"{quote(self.username or '', safe='')}:{quote(self.password or '', safe='')}@"
        return f"{self.scheme}://{auth}{host}:{self.port}"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every form the credentials may take in text: raw, URL-encoded, Basic token."""
        if not self.has_credentials:
            return ()
        user, password = self.username or "", self.password or ""
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        forms = {user, password, quote(user, safe=""), quote(password, safe=""), token}
        return tuple(sorted((f for f in forms if f), key=len, reverse=True))

    def __repr__(self) -> str:
        return f"Proxy({self.masked})"

    __str__ = __repr__


def _mask_userinfo(text: str) -> str:
    """A proxy URL as it may be shown in an error: any userinfo replaced by ``***``."""
    # Up to the last "@": a password with an unencoded "/" or "@" must not peek out.
    scheme, sep, rest = text.partition("://")
    if not sep:
        return "***@" + text.rsplit("@", 1)[1] if "@" in text else text
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}://{rest}"


def parse_proxy_url(
    text: str,
    *,
    where: str,
    username: str | None = None,
    password: str | None = None,
) -> Proxy:
    """Parse ``scheme://[user:pass@]host[:port]``; errors name ``where`` and never the secret.

    ``username``/``password`` apply when the URL has no credentials of its own.
    """
    text = text.strip()
    shown = _mask_userinfo(text)
    if "://" not in text:
        raise UsageError(f"{where}: proxy URL {shown!r} has no scheme (use http://, socks5://...)")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise UsageError(f"{where}: proxy URL {shown!r} has an invalid port") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        known = ", ".join(SCHEMES)
        raise UsageError(f"{where}: proxy scheme {scheme!r} is not supported (use {known})")
    if not parts.hostname:
        raise UsageError(f"{where}: proxy URL {shown!r} has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError(f"{where}: proxy URL {shown!r} must be scheme://host:port only")
    user = unquote(parts.username) if parts.username is not None else None
    secret = unquote(parts.password) if parts.password is not None else None
    if not user and not secret:
        user, secret = username or None, password or None
    return Proxy(
        scheme=scheme,
        host=parts.hostname,
        port=port if port is not None else SCHEMES[scheme],
        username=user,
        password=secret,
    )


def parse_template(template: str, *, where: str) -> Literal["username", "password"]:
    """Which credential a session template rewrites; a :class:`UsageError` when the
    template is not ``...{session}...`` plus at most one of ``{username}``/``{password}``."""
    fields = _FIELD.findall(template)
    unknown = [f for f in fields if f not in ("session", "username", "password")]
    if unknown:
        raise UsageError(
            f"{where}: unknown field {{{unknown[0]}}} in the session template "
            "(use {session} with {username} or {password})"
        )
    if "session" not in fields:
        raise UsageError(f"{where}: the session template has no {{session}} field")
    if "username" in fields and "password" in fields:
        raise UsageError(
            f"{where}: the session template may use {{username}} or {{password}}, not both"
        )
    return "password" if "password" in fields else "username"


@dataclasses.dataclass(frozen=True, slots=True)
class SessionConfig:
    """The ``[session]`` table of a profile."""

    template: str
    """Where the id goes: ``{username}-session-{session}`` or ``{password}_session-{session}``."""
    max_age: float | None = None
    """Seconds a session lives (providers keep an IP 1-30 min); None: no limit."""
    max_uses: int | None = None
    """Requests one session carries; None: no limit."""
    pool_size: int = DEFAULT_POOL_SIZE
    """Live sessions at once (per domain with ``per_domain``)."""
    per_domain: bool = True
    """Sessions belong to one domain: a block on one site does not retire another's IP."""
    max_block_retries: int = 10
    """Blocked retries on fresh sessions one request gets before its retry budget is used."""

    def __post_init__(self) -> None:
        parse_template(self.template, where="session.template")
        if self.pool_size < 1:
            raise UsageError(f"session.pool_size: must be >= 1, got {self.pool_size}")
        if self.max_uses is not None and self.max_uses < 1:
            raise UsageError(f"session.max_uses: must be >= 1, got {self.max_uses}")
        if self.max_age is not None and self.max_age <= 0:
            raise UsageError(f"session.max_age: must be > 0, got {self.max_age}")
        if self.max_block_retries < 0:
            raise UsageError(
                f"session.max_block_retries: must be >= 0, got {self.max_block_retries}"
            )

    @property
    def field(self) -> Literal["username", "password"]:
        return parse_template(self.template, where="session.template")

    def identity(self, proxy: Proxy, session_id: str) -> Proxy:
        """``proxy`` with the session id written into its username or password."""
        text = self.template.format(
            session=session_id, username=proxy.username or "", password=proxy.password or ""
        )
        if self.field == "password":
            return dataclasses.replace(proxy, password=text)
        return dataclasses.replace(proxy, username=text)


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class ProxyConfig:
    """The proxies a job uses, and how: one rotating gateway or a static list of IPs.

    ``rotating``: per-domain limits apply to the target; ``static``: each proxy
    has its own per-domain limits and its own concurrency cap.
    """

    kind: ProxyKind
    proxies: tuple[Proxy, ...]
    source: str
    """Where the list came from, for messages: a profile file, ``--proxy``, ``--proxy-file``."""
    session: SessionConfig | None = None
    """Sticky sessions: the session id written into each proxy's credentials."""

    def __post_init__(self) -> None:
        if self.kind not in PROXY_KINDS:
            raise UsageError(f"{self.source}: proxy kind must be rotating or static")
        unique: list[Proxy] = []
        seen_urls: set[str] = set()
        labels: dict[str, int] = {}
        for proxy in self.proxies:
            if proxy.url in seen_urls:
                continue  # the same endpoint twice is still one IP
            seen_urls.add(proxy.url)
            base = dataclasses.replace(proxy, suffix="").label
            labels[base] = labels.get(base, 0) + 1
            suffix = "" if labels[base] == 1 else f"#{labels[base]}"
            unique.append(dataclasses.replace(proxy, suffix=suffix))
        object.__setattr__(self, "proxies", tuple(unique))

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for proxy in self.proxies for s in proxy.secrets)

    def __repr__(self) -> str:
        inner = ", ".join(p.masked for p in self.proxies)
        return f"ProxyConfig({self.kind}, [{inner}])"


def read_proxy_file(path: str | Path, env: Mapping[str, str] | None = None) -> list[Proxy]:
    """One proxy URL per line; blank lines and ``#`` comments skipped; ``${VAR}`` expanded."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"proxy file not found: {file}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read proxy file {file}: {type(exc).__name__}") from None
    proxies = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{file}:{number}"
        line, missing = expand_proxy_url(line, env)
        if missing:
            raise UsageError(f"{where}: environment variable {missing[0]} is not set")
        proxies.append(parse_proxy_url(line, where=where))
    if not proxies:
        raise UsageError(f"proxy file {file} lists no proxy")
    return proxies


def all_secrets(proxies: Iterable[Proxy]) -> tuple[str, ...]:
    return tuple(s for proxy in proxies for s in proxy.secrets)
