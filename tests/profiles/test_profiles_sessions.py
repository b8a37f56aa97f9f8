"""Profiles' ``[session]``, ``[cost]`` and ``ban_patterns``: loading, checks (one line,
exit 2) and ``profiles show`` (the template shown, never the credentials)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pooledcrawl.cli import build_parser, main
from pooledcrawl.cli.crawl import job_from_args
from pooledcrawl.profiles import load_profile

USER, SECRET = "cust-8812", "sess-S3cret-Pw-1177"
SPIDER = """
from pooledcrawl import Spider

class Plain(Spider):
    start_urls = ["http://127.0.0.1:9/"]
"""


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PCRAWL_PROFILES_DIR", raising=False)
    monkeypatch.setenv("PS_USER", USER)
    monkeypatch.setenv("PS_PASS", SECRET)


def write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / f"{name}.toml").write_text(text, encoding="utf-8")
    return tmp_path


GOOD = """
extends = "residential"
[proxy]
url = "http://${PS_USER}:${PS_PASS}@gw.example.net:7777"
ban_patterns = ["captcha", "access\\\\s+denied"]
ban_challenge_paths = ["/challenge"]
[session]
template = "{username}-session-{session}-sesstime-10"
max_age = 600
max_uses = 100
pool_size = 20
per_domain = false
[cost]
price_per_gb = 8.5
price_per_request = 0.0001
"""


def test_session_cost_and_ban_patterns_load(tmp_path: Path) -> None:
    profile = load_profile("resi", write(tmp_path, "resi", GOOD))
    session = profile.session
    assert session is not None and profile.proxy is not None
    assert profile.proxy.session is session
    assert (session.max_age, session.max_uses, session.pool_size, session.per_domain) == (
        600.0,
        100,
        20,
        False,
    )
    proxy = session.identity(profile.proxy.proxies[0], "abc")
    assert proxy.username == f"{USER}-session-abc-sesstime-10" and proxy.password == SECRET
    settings = profile.effective
    assert settings.ban_patterns == ["captcha", r"access\s+denied"]
    assert settings.ban_challenge_paths == ["/challenge"]
    assert (profile.price.per_gb, profile.price.per_request) == (8.5, 0.0001)


def test_password_templates_and_sessions_apply_to_proxy_urls(tmp_path: Path) -> None:
    write(
        tmp_path,
        "pw",
        'extends = "mobile"\n[session]\ntemplate = "{password}_session-{session}_lifetime-30m"\n',
    )
    spider = tmp_path / "spider.py"
    spider.write_text(SPIDER, encoding="utf-8")
    flags = ["--profile", "pw", "--profiles-dir", str(tmp_path)]
    flags += ["--proxy", "http://u:${PS_PASS}@127.0.0.1:3128"]
    args = build_parser().parse_args(["crawl", f"{spider}:Plain", *flags])
    job = job_from_args(args, args.target)
    assert job.proxies is not None and job.proxies.session is not None
    assert job.proxies.session.field == "password"


def test_profiles_show_prints_the_template_and_masks_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    literal = GOOD.replace(
        'template = "{username}', f'template = "{USER}-zone-resi-session-{{session}}"\n#'
    )
    write(tmp_path, "resi", GOOD)
    write(tmp_path, "literal", literal)
    assert main(["profiles", "show", "resi", "--profiles-dir", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    assert 'template = "{username}-session-{session}-sesstime-10"' in shown
    assert "the session id goes into the proxy username" in shown
    assert "pool_size = 20" in shown and "price_per_gb = 8.5" in shown
    assert 'ban_patterns = ["captcha", "access\\\\s+denied"]' in shown
    assert main(["profiles", "show", "literal", "--profiles-dir", str(tmp_path)]) == 0
    literal_shown = capsys.readouterr().out
    assert 'template = "***-zone-resi-session-{session}"' in literal_shown
    for text in (shown, literal_shown):
        assert SECRET not in text and USER not in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[session]\ntemplate = "{username}-sess"\n', "has no {session} field"),
        ('[session]\ntemplate = "{user}-{session}"\n', "unknown field {user}"),
        ("[session]\npool_size = 5\n", "session.template: required"),
        (
            '[session]\ntemplate = "{username}-{session}"\npool_size = 0\n',
            "pool_size: must be >= 1",
        ),
        ('[session]\ntemplate = "{username}-{session}"\nmax_age = "x"\n', "expected a number"),
        (
            '[session]\ntemplate = "{username}-{session}"\nsticky = 1\n',
            "unknown key 'session.sticky'",
        ),
        ('[proxy]\nban_patterns = ["(captcha"]\n', "proxy.ban_patterns: invalid regex"),
        ("[cost]\nprice_per_gb = -1\n", "price_per_gb: must be >= 0"),
        ('[cost]\nprice_per_gb = "cheap"\n', "expected a number"),
    ],
)
def test_bad_tables_are_one_line_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    write(tmp_path, "bad", 'extends = "residential"\n' + text)
    assert main(["profiles", "show", "bad", "--profiles-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--profile", "datacenter,datacenter"], "listed twice"),
        (["--profile", "datacenter,"], "empty profile name"),
        (["--profile", "datacenter,nope"], "unknown profile 'nope'"),
        (["--profile", "datacenter,residential", "--proxy", "http://127.0.0.1:1"], "tiers"),
        (["--budget", "0"], "must be > 0"),
    ],
)
def test_tier_and_budget_flag_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    spider = tmp_path / "spider.py"
    spider.write_text(SPIDER, encoding="utf-8")
    try:
        code = main(["crawl", f"{spider}:Plain", *flags])
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    assert code == 2
    assert message in capsys.readouterr().err


def test_tiers_build_one_settings_layer_per_profile(tmp_path: Path) -> None:
    spider = tmp_path / "spider.py"
    spider.write_text(SPIDER, encoding="utf-8")
    args = build_parser().parse_args(
        ["crawl", f"{spider}:Plain", "--profile", "datacenter,mobile", "-s", "max_retries=5"]
    )
    job = job_from_args(args, args.target)
    assert [t.name for t in job.tiers] == ["datacenter", "mobile"]
    dc, mobile = job.tiers
    assert (dc.settings.domain_max, mobile.settings.domain_max) == (200, 50)
    assert (dc.settings.timeout_total, mobile.settings.timeout_total) == (30, 60)
    # the command line wins on every tier
    assert dc.settings.max_retries == mobile.settings.max_retries == 5
