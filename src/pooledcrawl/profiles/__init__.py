"""Proxy-pool profiles: named bundles of settings plus the proxy, one per pool type.

``profiles/*.toml`` in the repository (shipped in the wheel as
``pooledcrawl/profiles/data``), then the user's ``--profiles-dir`` or
``$PCRAWL_PROFILES_DIR``; see :func:`load_profile`.
"""

from pooledcrawl.profiles.loader import (
    ENV_DIR,
    Profile,
    ProfileSource,
    find_profiles,
    load_profile,
    package_profiles_dir,
    session_connector_limit,
    user_profiles_dir,
)

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
