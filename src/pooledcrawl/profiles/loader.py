"""Loading and resolving proxy-pool profiles.

Search order (:mod:`.finding`): the package's own profiles, then ``--profiles-dir``
(or ``PCRAWL_PROFILES_DIR``); a user profile with the same name wins. Resolution: the
``extends`` chain, read and checked (:mod:`.reading`); ``${ENV_VAR}`` expansion
(:mod:`.env`); type and range checks and derived connector limits (:mod:`.layer`);
the proxies and sessions (:mod:`.proxies`). Every mistake is a :class:`UsageError`
naming the file and key.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pooledcrawl.errors import UsageError
from pooledcrawl.profiles.env import expand_tree
from pooledcrawl.profiles.finding import (
    ENV_DIR,
    ProfileSource,
    find_profiles,
    package_profiles_dir,
    unknown_profile,
    user_profiles_dir,
)
from pooledcrawl.profiles.layer import check_sizing, to_settings
from pooledcrawl.profiles.proxies import proxy_config, proxy_kind, session_config
from pooledcrawl.profiles.reading import load_chain
from pooledcrawl.proxy.cost import Price
from pooledcrawl.proxy.endpoint import ProxyConfig, ProxyKind, SessionConfig
from pooledcrawl.settings import Settings
from pooledcrawl.sizing import session_connector_limit

__all__ = [
    "ENV_DIR",
    "Profile",
    "ProfileSource",
    "find_profiles",
    "load_profile",
    "package_profiles_dir",
    "resolve",
    "session_connector_limit",
    "user_profiles_dir",
]


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
        raise UsageError(unknown_profile(name, sources))
    return resolve(source, sources, env=os.environ if env is None else env, strict_env=strict_env)


def resolve(
    source: ProfileSource,
    sources: Mapping[str, ProfileSource],
    *,
    env: Mapping[str, str],
    strict_env: bool = True,
) -> Profile:
    tree, origins, chain = load_chain(source, sources)
    template_shown = tree.get("session", {}).get("template")
    credential_vars = expand_tree(tree, origins, env, strict_env)
    check_sizing(tree, origins)
    settings, derived = to_settings(tree, origins)
    sizing = tree.get("sizing", {})
    session = session_config(tree.get("session"), origins, source)
    proxy = proxy_config(tree.get("proxy", {}), origins, source)
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
        proxy_kind=proxy_kind(tree.get("proxy", {}), origins, source),
        credential_vars=tuple(credential_vars),
        session=session,
        session_template=template_shown,
    )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
