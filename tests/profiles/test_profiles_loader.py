"""Profiles: the shipped four, finding and shadowing, extends, ${ENV}, derived limits,
and every validation error (message names the file and key; the CLI exits 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pooledcrawl.cli import main
from pooledcrawl.errors import UsageError
from pooledcrawl.profiles import find_profiles, load_profile, session_connector_limit
from pooledcrawl.settings import Settings
from pooledcrawl.sizing import little_law, with_headroom

SECRET = "pr0xy-S3CRET-9f8e7d"


@pytest.fixture(autouse=True)
def _no_env_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PCRAWL_PROFILES_DIR", raising=False)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


# ---- the shipped profiles --------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "kind", "latency", "start", "top", "per_proxy"),
    [
        ("datacenter", "rotating", (60, 120), 50, 200, None),
        ("residential", "rotating", (180, 350), 30, 100, None),
        ("mobile", "rotating", (200, 500), 16, 50, None),
        ("static", "static", (60, 120), 20, 50, 50),
    ],
)
def test_shipped_profiles_match_the_pool_type_table(
    name: str, kind: str, latency: tuple[int, int], start: int, top: int, per_proxy: int | None
) -> None:
    profile = load_profile(name)
    assert profile.source.builtin
    assert profile.proxy is None  # shipped without a proxy: you bring your own
    assert latency[0] <= (profile.latency_ms or 0) <= latency[1]
    s = profile.effective
    assert (s.domain_start, s.domain_max, s.proxy_concurrency) == (start, top, per_proxy)
    assert s.keepalive_timeout == 60 and s.ttl_dns_cache > 0
    assert s.ban_statuses == [403] and not s.http2
    assert s.timeout_connect <= s.timeout_total and s.timeout_sock_read <= s.timeout_total
    # limit_per_host: Little's Law on the profile's figures, +30%
    assert profile.target_rps is not None and profile.latency_ms is not None
    need = little_law(profile.target_rps, profile.latency_ms / 1000)
    assert s.connector_limit_per_host == with_headroom(need) == round(need * 1.3)
    assert "connector_limit_per_host" in profile.derived
    # the sizing is consistent: the per-host need is the profile's max concurrency
    assert abs(need - top) <= 2
    assert session_connector_limit(s) == round(min(s.concurrency, per_proxy or 10**9) * 1.3)


def test_mobile_is_frugal() -> None:
    mobile, residential = load_profile("mobile").effective, load_profile("residential").effective
    assert mobile.max_retries < residential.max_retries
    assert mobile.max_response_size < residential.max_response_size


def test_residential_needs_more_parallelism_than_datacenter_for_the_same_rps() -> None:
    dc, resi = load_profile("datacenter"), load_profile("residential")
    assert resi.latency_ms and dc.latency_ms and resi.latency_ms > dc.latency_ms
    assert little_law(300, resi.latency_ms / 1000) > little_law(300, dc.latency_ms / 1000)


# ---- finding ---------------------------------------------------------------------------
def test_user_profile_with_the_same_name_wins(tmp_path: Path) -> None:
    write(tmp_path, "mobile", "[concurrency]\nstart = 2\nmax = 4\n")
    write(tmp_path, "mine", 'description = "mine"\n')
    found = find_profiles(tmp_path)
    assert {"datacenter", "residential", "mobile", "static", "mine"} <= set(found)
    assert not found["mobile"].builtin and found["datacenter"].builtin
    profile = load_profile("mobile", tmp_path)
    assert profile.effective.domain_start == 2
    assert profile.effective.max_retries == Settings().max_retries  # nothing inherited


def test_profiles_dir_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "envdir", "[retry]\nmax_retries = 7\n")
    monkeypatch.setenv("PCRAWL_PROFILES_DIR", str(tmp_path))
    assert load_profile("envdir").effective.max_retries == 7
    # the flag wins over the variable
    other = tmp_path / "other"
    other.mkdir()
    write(other, "envdir", "[retry]\nmax_retries = 8\n")
    assert load_profile("envdir", other).effective.max_retries == 8


def test_extends_overrides_a_few_keys(tmp_path: Path) -> None:
    write(
        tmp_path,
        "resi-eu",
        'extends = "residential"\ndescription = "EU exits"\n'
        "[concurrency]\nmax = 60\n[timeout]\ntotal = 90\n",
    )
    child, base = load_profile("resi-eu", tmp_path), load_profile("residential")
    c, b = child.effective, base.effective
    assert (c.domain_concurrency_max, c.timeout_total) == (60, 90)
    assert c.domain_concurrency == b.domain_concurrency == 30
    assert c.timeout_connect == b.timeout_connect
    assert child.latency_ms == base.latency_ms
    assert child.description == "EU exits"
    assert [p.stem for p in child.chain] == ["residential", "resi-eu"]


def test_a_user_profile_may_extend_the_package_profile_it_shadows(tmp_path: Path) -> None:
    write(tmp_path, "datacenter", 'extends = "datacenter"\n[retry]\nmax_retries = 5\n')
    profile = load_profile("datacenter", tmp_path)
    assert profile.effective.max_retries == 5
    assert profile.effective.domain_max == 200  # from the package profile
    assert not profile.source.builtin


def test_explicit_connector_limits_are_not_derived(tmp_path: Path) -> None:
    write(
        tmp_path, "fixed", 'extends = "datacenter"\n[connector]\nlimit_per_host = 17\nlimit = 40\n'
    )
    profile = load_profile("fixed", tmp_path)
    assert profile.effective.connector_limit_per_host == 17
    assert session_connector_limit(profile.effective) == 40
    assert "connector_limit_per_host" not in profile.derived


def test_settings_section_and_env_expansion(tmp_path: Path) -> None:
    write(
        tmp_path,
        "env",
        '[settings]\nuser_agent = "bot/${BOT_VERSION}"\nmax_depth = "${DEPTH}"\n',
    )
    profile = load_profile("env", tmp_path, env={"BOT_VERSION": "2", "DEPTH": "3"})
    assert profile.effective.user_agent == "bot/2"
    assert profile.effective.max_depth == 3


def test_proxy_credentials_from_the_environment_stay_masked(tmp_path: Path) -> None:
    write(
        tmp_path,
        "mine",
        'extends = "static"\n[proxy]\n'
        'urls = ["http://${PUSER}:${PPASS}@127.0.0.1:3128", "socks5://127.0.0.1:1080"]\n'
        'username = "shared"\npassword = "${SHARED_PASS}"\n',
    )
    env = {"PUSER": "alice", "PPASS": SECRET + "@/:", "SHARED_PASS": SECRET + "2"}
    profile = load_profile("mine", tmp_path, env=env)
    assert profile.proxy is not None and profile.proxy.kind == "static"
    first, second = profile.proxy.proxies
    assert (first.username, first.password) == ("alice", SECRET + "@/:")
    assert (second.username, second.password) == ("shared", SECRET + "2")
    assert profile.credential_vars == ("PPASS", "PUSER", "SHARED_PASS")
    assert SECRET not in repr(profile) and "alice" not in repr(profile)


def test_proxy_file_relative_to_the_profile(tmp_path: Path) -> None:
    (tmp_path / "ips.txt").write_text("http://127.0.0.1:1\nhttp://127.0.0.1:2\n", encoding="utf-8")
    write(tmp_path, "ips", 'extends = "static"\n[proxy]\nfile = "ips.txt"\n')
    profile = load_profile("ips", tmp_path)
    assert profile.proxy is not None
    assert [p.port for p in profile.proxy.proxies] == [1, 2]


def test_a_child_proxy_list_replaces_the_parents(tmp_path: Path) -> None:
    write(tmp_path, "base", '[proxy]\nurls = ["http://127.0.0.1:1", "http://127.0.0.1:2"]\n')
    write(tmp_path, "child", 'extends = "base"\n[proxy]\nurl = "http://127.0.0.1:3"\n')
    profile = load_profile("child", tmp_path)
    assert profile.proxy is not None
    assert [p.port for p in profile.proxy.proxies] == [3]


# ---- validation ------------------------------------------------------------------------
ERRORS = [
    ("unknown-top", "speed = 3\n", "unknown key 'speed'"),
    (
        "unknown-key",
        "[timeout]\ntotl = 3\n",
        "unknown key 'timeout.totl' (did you mean 'timeout.total'?)",
    ),
    ("unknown-setting", "[settings]\nconcurency = 3\n", "unknown key 'settings.concurency'"),
    ("section-not-table", "timeout = 3\n", "timeout: expected a [timeout] table"),
    (
        "wrong-type",
        '[concurrency]\nstart = "many"\n',
        "concurrency.start: expected an integer, got 'many'",
    ),
    ("wrong-type-bool", "[http]\nhttp2 = 1\n", "http.http2: expected true or false, got 1"),
    (
        "wrong-type-list",
        '[proxy]\nban_statuses = ["403"]\n',
        "proxy.ban_statuses: in the list: expected an integer",
    ),
    (
        "start-above-max",
        "[concurrency]\nstart = 300\nmax = 200\n",
        "concurrency.start (300) is above concurrency.max (200)",
    ),
    ("negative", "[timeout]\ntotal = -1\n", "timeout.total: must be > 0"),
    ("per-proxy-zero", "[concurrency]\nper_proxy = 0\n", "concurrency.per_proxy: must be > 0"),
    (
        "sizing-zero",
        "[sizing]\nlatency_ms = 0\ntarget_rps = 10\n",
        "sizing.latency_ms: must be > 0",
    ),
    (
        "missing-env",
        '[proxy]\nurl = "http://u:${NO_SUCH_PCRAWL_VAR}@h:1"\n',
        "proxy.url: environment variable NO_SUCH_PCRAWL_VAR is not set",
    ),
    ("bad-kind", '[proxy]\nkind = "sticky"\n', "proxy.kind: expected 'rotating' or 'static'"),
    ("bad-url", '[proxy]\nurl = "ftp://h:1"\n', "proxy.url: proxy scheme 'ftp' is not supported"),
    (
        "creds-no-url",
        '[proxy]\npassword = "x"\n',
        "proxy.password: credentials given but no proxy URL",
    ),
    ("extends-unknown", 'extends = "nope"\n', "extends: unknown profile 'nope'"),
    (
        "twice",
        "[retry]\nmax_retries = 1\n[settings]\nmax_retries = 2\n",
        "settings.max_retries: already set as retry.max_retries",
    ),
    ("bad-toml", "[timeout\n", "invalid TOML"),
]


@pytest.mark.parametrize(("name", "text", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_validation_errors_name_the_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, message: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(UsageError) as info:
        load_profile(name, tmp_path, env={})
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    # from the command line: that one line, exit code 2, no traceback
    assert main(["profiles", "show", name, "--profiles-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"pooledcrawl: error: {info.value}"


def test_error_in_the_parent_names_the_parent_file(tmp_path: Path) -> None:
    parent = write(tmp_path, "parent", '[concurrency]\nstart = "x"\n')
    write(tmp_path, "child", 'extends = "parent"\n')
    with pytest.raises(UsageError, match=f"^{parent}: concurrency.start"):
        load_profile("child", tmp_path)


def test_start_above_max_across_the_chain_names_the_child(tmp_path: Path) -> None:
    child = write(tmp_path, "child", 'extends = "mobile"\n[concurrency]\nstart = 60\n')
    with pytest.raises(UsageError, match=f"^{child}: concurrency.start \\(60\\) is above"):
        load_profile("child", tmp_path)


def test_extends_cycle(tmp_path: Path) -> None:
    write(tmp_path, "a", 'extends = "b"\n')
    write(tmp_path, "b", 'extends = "a"\n')
    with pytest.raises(UsageError, match="extends: cycle a -> b -> a"):
        load_profile("a", tmp_path)


def test_extending_itself_without_a_package_profile(tmp_path: Path) -> None:
    write(tmp_path, "solo", 'extends = "solo"\n')
    with pytest.raises(UsageError, match="cannot extend itself"):
        load_profile("solo", tmp_path)


def test_unknown_profile_and_missing_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(
        UsageError, match=r"unknown profile 'residental' \(did you mean 'residential'\?\)"
    ):
        load_profile("residental")
    assert main(["profiles", "list", "--profiles-dir", str(tmp_path / "nope")]) == 2
    assert "--profiles-dir: profiles directory not found" in capsys.readouterr().err


def test_credential_errors_never_echo_the_value(tmp_path: Path) -> None:
    write(tmp_path, "typed", f'[proxy]\npassword = ["{SECRET}"]\n')
    with pytest.raises(UsageError) as info:
        load_profile("typed", tmp_path)
    assert "proxy.password: expected a string" in str(info.value)
    assert SECRET not in str(info.value)
    write(tmp_path, "badurl", f'[proxy]\nurl = "http://u:{SECRET}@h:port"\n')
    with pytest.raises(UsageError) as info:
        load_profile("badurl", tmp_path)
    assert "proxy.url" in str(info.value) and SECRET not in str(info.value)
