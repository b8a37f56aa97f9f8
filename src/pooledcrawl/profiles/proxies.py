"""A profile's ``[proxy]`` and ``[session]`` tables: the proxies (credentials from the
profile's ``username``/``password`` go to URLs that carry none) and sticky sessions."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from pooledcrawl.errors import UsageError
from pooledcrawl.profiles.finding import ProfileSource
from pooledcrawl.proxy.endpoint import (
    DEFAULT_POOL_SIZE,
    PROXY_KINDS,
    Proxy,
    ProxyConfig,
    ProxyKind,
    SessionConfig,
    parse_proxy_url,
    read_proxy_file,
)

__all__ = ["proxy_config", "proxy_kind", "session_config"]


def session_config(
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
    max_age = table.get("max_age")
    try:
        return SessionConfig(
            template=template,
            max_age=None if max_age is None else float(max_age),
            max_uses=table.get("max_uses"),
            pool_size=table.get("pool_size", DEFAULT_POOL_SIZE),
            per_domain=table.get("per_domain", True),
        )
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None


def proxy_kind(
    table: Mapping[str, Any], origins: Mapping[str, Path], source: ProfileSource
) -> ProxyKind:
    kind = table.get("kind", "rotating")
    if kind not in PROXY_KINDS:
        where = origins.get("proxy.kind", source.path)
        raise UsageError(f"{where}: proxy.kind: expected 'rotating' or 'static', got {kind!r}")
    return cast(ProxyKind, kind)


def proxy_config(
    table: Mapping[str, Any], origins: Mapping[str, Path], source: ProfileSource
) -> ProxyConfig | None:
    def where(key: str) -> str:
        return f"{origins.get(f'proxy.{key}', source.path)}: proxy.{key}"

    kind = proxy_kind(table, origins, source)
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
