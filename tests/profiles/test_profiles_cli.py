"""Choosing a profile and proxies on the command line: --profile over the spider's
`profile`, --proxy / --proxy-file, the direct-connection warning, `profiles list|show`,
and every error path (one line, exit code 2, no secret)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pooledcrawl.cli import build_parser, main
from pooledcrawl.cli.crawl import job_from_args
from pooledcrawl.runner import CrawlJob

SECRET = "cli-S3cret-Pa55-4821"

SPIDERS = """
from pooledcrawl import Spider

class Plain(Spider):
    start_urls = ["http://127.0.0.1:9/"]

class Mobile(Spider):
    profile = "mobile"
    start_urls = ["http://127.0.0.1:9/"]

class Missing(Spider):
    profile = "no-such-profile"
"""


@pytest.fixture(autouse=True)
def _no_env_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PCRAWL_PROFILES_DIR", raising=False)


@pytest.fixture
def spiders(tmp_path: Path) -> Path:
    path = tmp_path / "spiders.py"
    path.write_text(SPIDERS, encoding="utf-8")
    return path


def job(spiders: Path, name: str, *flags: str) -> CrawlJob:
    args = build_parser().parse_args(["crawl", f"{spiders}:{name}", *flags])
    return job_from_args(args, args.target)


def test_spider_profile_is_used_and_the_command_line_wins(spiders: Path) -> None:
    assert job(spiders, "Mobile").settings.max_retries == 1
    assert job(spiders, "Mobile").settings.domain_max == 50
    chosen = job(spiders, "Mobile", "--profile", "residential")
    assert (chosen.settings.max_retries, chosen.settings.domain_max) == (3, 100)
    # -s still wins over the profile
    assert job(spiders, "Mobile", "-s", "max_retries=0").settings.max_retries == 0


def test_no_profile_gives_plain_defaults_and_no_warning(
    spiders: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        plain = job(spiders, "Plain")
    assert plain.proxies is None
    assert plain.settings.concurrency == 64 and plain.settings.connector_limit_per_host is None
    assert "connecting directly" not in caplog.text


def test_a_profile_without_a_proxy_warns_once(
    spiders: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        chosen = job(spiders, "Plain", "--profile", "datacenter")
    assert chosen.proxies is None
    assert caplog.text.count("profile datacenter sets no proxy: connecting directly") == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        job(spiders, "Plain", "--profile", "datacenter", "--proxy", "http://127.0.0.1:3128")
    assert "connecting directly" not in caplog.text


def test_proxy_flags(spiders: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCT_CLI_PASS", SECRET)
    one = job(spiders, "Plain", "--proxy", "http://me:${PCT_CLI_PASS}@127.0.0.1:3128")
    assert one.proxies is not None and one.proxies.kind == "rotating"
    assert one.proxies.proxies[0].password == SECRET
    assert SECRET not in repr(one.proxies)
    static = job(
        spiders,
        "Plain",
        "--profile",
        "static",
        "--proxy",
        "http://127.0.0.1:1",
        "--proxy",
        "socks5://127.0.0.1:2",
    )
    assert static.proxies is not None and static.proxies.kind == "static"
    assert len(static.proxies.proxies) == 2
    assert static.settings.proxy_concurrency == 50
    listing = tmp_path / "ips.txt"
    listing.write_text("http://127.0.0.1:1\nhttp://127.0.0.1:2\nhttp://127.0.0.1:3\n")
    from_file = job(spiders, "Plain", "--proxy-file", str(listing))
    assert from_file.proxies is not None and from_file.proxies.kind == "static"
    assert [p.port for p in from_file.proxies.proxies] == [1, 2, 3]


CRAWL_ERRORS = [
    (["--profile", "residental"], "--profile: unknown profile 'residental' (did you mean"),
    (["--proxy", f"ftp://u:{SECRET}@h:1"], "--proxy: proxy scheme 'ftp' is not supported"),
    (["--proxy", f"http://u:{SECRET}@h:port"], "--proxy: proxy URL 'http://***@h:port'"),
    (
        ["--proxy", "http://u:${PCT_NOT_SET_VAR}@h:1"],
        "--proxy: environment variable PCT_NOT_SET_VAR",
    ),
    (["--proxy-file", "/nonexistent/ips.txt"], "proxy file not found: /nonexistent/ips.txt"),
    (["--proxy", "http://h:1", "--proxy-file", "x"], "use --proxy or --proxy-file, not both"),
    (
        ["--profiles-dir", "/nonexistent/dir", "--profile", "x"],
        "--profiles-dir: profiles directory not found",
    ),
    (["-s", "proxy_concurrency=0"], "proxy_concurrency: must be > 0"),
    (["-s", "ban_statuses=forbidden"], "setting ban_statuses"),
]


@pytest.mark.parametrize(("flags", "message"), CRAWL_ERRORS)
def test_crawl_usage_errors(
    spiders: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    assert main(["crawl", f"{spiders}:Plain", *flags]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pooledcrawl: error: ")
    assert message in lines[0]
    assert SECRET not in captured.err + captured.out


def test_a_spider_naming_an_unknown_profile(
    spiders: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["crawl", f"{spiders}:Missing"]) == 2
    assert "Missing.profile: unknown profile 'no-such-profile'" in capsys.readouterr().err


def test_a_broken_user_profile_from_crawl(
    spiders: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "mine.toml"
    bad.write_text("[concurrency]\nstart = 9\nmax = 3\n", encoding="utf-8")
    code = main(["crawl", f"{spiders}:Plain", "--profile", "mine", "--profiles-dir", str(tmp_path)])
    assert code == 2
    assert f"{bad}: concurrency.start (9) is above concurrency.max (3)" in capsys.readouterr().err


def test_profiles_list(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(
        f'extends = "static"\ndescription = "my IPs"\n[proxy]\n'
        f'urls = ["http://u:{SECRET}@127.0.0.1:1", "http://u:{SECRET}@127.0.0.1:2"]\n',
        encoding="utf-8",
    )
    assert main(["profiles", "list", "--profiles-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:6] if line.strip()}
    assert set(rows) == {"datacenter", "mobile", "residential", "static", "mine"}
    assert rows["datacenter"][1:5] == ["package", "rotating", "90", "ms"]
    assert rows["static"][5:7] == ["20->50", "50"]
    assert rows["mine"][1:3] == ["user", "static"] and "2 proxies" in out
    assert "mine: my IPs" in out
    assert SECRET not in out


def test_profiles_show_masks_credentials_written_in_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "inline.toml").write_text(
        f'extends = "residential"\n[proxy]\nurl = "socks5://bob:{SECRET}@127.0.0.1:1080"\n',
        encoding="utf-8",
    )
    assert main(["profiles", "show", "inline", "--profiles-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "socks5://***:***@127.0.0.1:1080" in out
    assert "written in the profile" in out
    assert "limit_per_host = 129" in out and "Little's Law" in out
    assert "start = 30" in out and "max = 100" in out
    assert SECRET not in out and "bob" not in out
