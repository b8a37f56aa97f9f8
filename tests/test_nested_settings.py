"""Nested settings (``settings.postgres``, ``settings.http_cache``): every spelling in
every layer (dotted, a table, the old flat name), field-by-field layering, and the
errors for a name that does not exist."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from pooledcrawl import Settings, Spider, UsageError
from pooledcrawl.cli import build_parser
from pooledcrawl.cli.crawl import job_from_args
from pooledcrawl.profiles import load_profile
from pooledcrawl.runner import build_settings
from pooledcrawl.settings import HttpCacheSettings, PostgresSettings


class Nested(Spider):
    custom_settings: ClassVar[dict[str, object]] = {
        "postgres": {"workers": 3, "pool_size": 2},
        "pg_monitor_interval": 5.0,  # the old flat name of postgres.monitor_interval
    }


def test_a_nested_field_layers_across_all_four_layers() -> None:
    profile = {"postgres.batch_size": 100, "postgres.workers": 2, "postgres.pool_size": 1}
    settings = build_settings(Nested, {"postgres.pool_size": "4"}, profile)
    assert settings.postgres == PostgresSettings(
        batch_size=100,  # the profile's, over the default 500
        workers=3,  # the spider's, over the profile's
        pool_size=4,  # the command line's, over the spider's and the profile's
        monitor_interval=5.0,  # the spider's, by its old name
    )
    assert settings.postgres.flush_interval == PostgresSettings().flush_interval  # default
    assert build_settings(Spider, {}, None).postgres == PostgresSettings()


def test_every_spelling_of_a_nested_setting_is_the_same_setting() -> None:
    expected = Settings(postgres=PostgresSettings(batch_size=7))
    for layer in (
        {"postgres.batch_size": 7},
        {"postgres": {"batch_size": 7}},
        {"postgres": PostgresSettings(batch_size=7)},
        {"postgres": '{"batch_size": 7}'},  # -s postgres='{"batch_size": 7}'
        {"pg_batch_size": "7"},
    ):
        assert Settings.layered(("command line", layer)) == expected, layer
    assert expected.get("postgres.batch_size") == expected.get("pg_batch_size") == 7
    cache = Settings.layered(
        ("command line", {"http_cache_dir": "c", "http_cache.mode": "offline"})
    )
    assert cache.http_cache == HttpCacheSettings(dir="c", mode="offline")
    # as_dict nests the groups, and reads back as the same settings
    assert Settings.layered(("saved", cache.as_dict())) == cache


def test_errors_name_the_setting_as_the_layer_spelled_it() -> None:
    with pytest.raises(UsageError, match=r"^command line: setting pg_pool_size: must be > 0"):
        Settings.layered(("command line", {"pg_pool_size": "0"}))
    with pytest.raises(UsageError, match=r"^spider: setting postgres.pool_size: must be > 0"):
        Settings.layered(("spider", {"postgres": {"pool_size": 0}}))
    with pytest.raises(UsageError, match=r"^command line: setting http_cache_mode: expected"):
        Settings.layered(("command line", {"http_cache_mode": "sometimes"}))
    with pytest.raises(UsageError, match=r"^command line: setting postgres.batch_size: "):
        Settings.layered(("command line", {"postgres.batch_size": "many"}))


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (
            {"postgres.pool_sise": 1},
            r"^x: unknown setting 'postgres.pool_sise' \(did you mean 'postgres.pool_size'\?\)$",
        ),
        ({"postgres": {"pool_sise": 1}}, r"^x: unknown setting 'postgres.pool_sise'"),
        ({"pg_pool_sise": 1}, r"^x: unknown setting 'pg_pool_sise' \(did you mean 'pg_pool_size'"),
        ({"postgres": 5}, r"^x: setting postgres: expected a mapping of postgres\.\* settings"),
        ({"postgres.": 5}, r"^x: unknown setting 'postgres\.'"),
    ],
)
def test_unknown_nested_names_are_usage_errors(layer: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Settings.layered(("x", layer))


def test_a_group_must_be_its_dataclass_in_python() -> None:
    with pytest.raises(UsageError, match=r"setting postgres: expected a PostgresSettings"):
        Settings(postgres={"pool_size": 4})  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"setting postgres.workers: must be > 0, got 0"):
        PostgresSettings(workers=0)


# ---- profiles ----------------------------------------------------------------------------


def write_profile(where: Path, name: str, text: str) -> None:
    (where / f"{name}.toml").write_text(text, encoding="utf-8")


def test_a_profile_takes_nested_settings_in_each_spelling(tmp_path: Path) -> None:
    write_profile(
        tmp_path,
        "pg",
        '[settings]\npg_workers = 6\n"http_cache.mode" = "refresh"\n'
        "[settings.postgres]\nbatch_size = 250\nmonitor = true\n",
    )
    settings = load_profile("pg", tmp_path).effective
    assert settings.postgres == PostgresSettings(workers=6, batch_size=250, monitor=True)
    assert settings.http_cache.mode == "refresh"


def test_a_child_profile_overrides_a_nested_setting_under_either_name(tmp_path: Path) -> None:
    write_profile(tmp_path, "base", "[settings]\npg_batch_size = 10\npg_workers = 2\n")
    write_profile(tmp_path, "child", 'extends = "base"\n[settings.postgres]\nbatch_size = 20\n')
    child = load_profile("child", tmp_path).effective.postgres
    assert (child.batch_size, child.workers) == (20, 2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[settings.postgres]\npool_sise = 3\n",
            r"unknown key 'settings.postgres.pool_sise' \(did you mean "
            r"'settings.postgres.pool_size'\?\)",
        ),
        ("[settings.postgres]\nbatch_size = 'big'\n", r"settings.postgres.batch_size: expected"),
        ("[settings.postgres]\nbatch_size = 0\n", r"settings.postgres.batch_size: must be > 0"),
        ("[settings]\npg_batch_size = 0\n", r"settings.pg_batch_size: must be > 0"),
        ("[settings]\npostgres = 3\n", r"settings.postgres: expected a \[settings.postgres\]"),
        (
            "[settings]\npg_batch_size = 1\n[settings.postgres]\nbatch_size = 2\n",
            r"already set as settings.pg_batch_size; set it once",
        ),
    ],
)
def test_profile_mistakes_in_nested_settings(tmp_path: Path, text: str, message: str) -> None:
    write_profile(tmp_path, "bad", text)
    with pytest.raises(UsageError, match=message) as info:
        load_profile("bad", tmp_path)
    assert str(info.value).startswith(str(tmp_path / "bad.toml"))
    assert "\n" not in str(info.value)


# ---- the command line --------------------------------------------------------------------

SPIDER = """
from pooledcrawl import Spider

class Tuned(Spider):
    start_urls = ["http://127.0.0.1:9/"]
    custom_settings = {"postgres": {"workers": 3, "pool_size": 2}, "pg_idle_check": 9}
"""


def test_the_four_layers_through_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PCRAWL_PROFILES_DIR", raising=False)
    (tmp_path / "tuned.py").write_text(SPIDER, encoding="utf-8")
    write_profile(
        tmp_path,
        "pg",
        "[settings.postgres]\nbatch_size = 100\nworkers = 2\npool_size = 1\nidle_check = 4\n",
    )
    argv = ["crawl", f"{tmp_path / 'tuned.py'}:Tuned", "--profile", "pg"]
    argv += ["--profiles-dir", str(tmp_path), "-s", "postgres.pool_size=4", "--pg-monitor"]
    argv += ["-s", "pg_flush_interval=0.5", "--cache", str(tmp_path / "cache")]
    args = build_parser().parse_args(argv)
    settings = job_from_args(args, args.target).settings
    assert settings.postgres == PostgresSettings(
        batch_size=100,  # profile
        workers=3,  # spider over profile
        idle_check=9,  # spider (old name) over profile
        pool_size=4,  # command line over spider and profile
        flush_interval=0.5,  # command line, old name
        monitor=True,  # --pg-monitor
    )
    assert settings.http_cache.dir == str(tmp_path / "cache")


def test_the_last_spelling_on_the_command_line_wins() -> None:
    from pooledcrawl.cli.options import parse_pairs
    from pooledcrawl.settings import Settings

    layer = parse_pairs(["postgres.pool_size=1", "pg_pool_size=2", "postgres.pool_size=3"], "-s")
    assert Settings.layered(("command line", layer)).postgres.pool_size == 3
