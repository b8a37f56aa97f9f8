"""Typed, layered settings: defaults < profile < custom_settings < command line."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest

from pooledcrawl import Settings, Spider, UsageError
from pooledcrawl.runner import build_settings
from pooledcrawl.settings import coerce


class Tuned(Spider):
    custom_settings: ClassVar[dict[str, object]] = {
        "concurrency": 20,
        "max_retries": 5,
        "user_agent": "spider-ua",
    }


def test_defaults() -> None:
    settings = Settings()
    assert settings.concurrency == 64
    assert settings.domain_start == 64 and settings.domain_max == 64
    assert settings.max_pages is None and settings.max_items is None
    assert 429 in settings.retry_http_codes


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().concurrency = 3  # type: ignore[misc]


def test_layering_order() -> None:
    profile = {"concurrency": 10, "max_retries": 1, "user_agent": "profile-ua", "max_pages": 7}
    cli = {"concurrency": "30"}
    settings = build_settings(Tuned, cli, profile)
    assert settings.concurrency == 30  # command line beats custom_settings
    assert settings.max_retries == 5  # custom_settings beats profile
    assert settings.user_agent == "spider-ua"
    assert settings.max_pages == 7  # profile beats defaults
    assert settings.timeout_total == Settings().timeout_total  # defaults remain
    assert build_settings(Tuned, {}, None).concurrency == 20
    assert build_settings(Spider, {}, None) == Settings()


def test_only_the_final_result_must_be_consistent() -> None:
    # The spider raises the per-domain start above the profile's ceiling; the command
    # line raises the ceiling too. Only the end result has to make sense.
    settings = Settings.layered(
        ("profile", {"domain_concurrency_max": 5}),
        ("Spider.custom_settings", {"domain_concurrency": 10}),
        ("command line", {"domain_concurrency_max": "20"}),
    )
    assert settings.domain_concurrency == 10 and settings.domain_concurrency_max == 20
    assert settings.domain_start == 10 and settings.domain_max == 20


def test_start_above_max_is_an_error_naming_the_layer() -> None:
    with pytest.raises(UsageError, match=r"command line: .*domain_concurrency \(8\).*\(4\)"):
        Settings.layered(
            ("profile", {"domain_concurrency_max": 4}),
            ("command line", {"domain_concurrency": "8"}),
        )
    with pytest.raises(UsageError, match="above domain_concurrency_max"):
        Settings(domain_concurrency=8, domain_concurrency_max=4)


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("concurrency", "8", 8),
        ("concurrency", " 8", 8),
        ("timeout_total", "1.5", 1.5),
        ("timeout_total", "2", 2.0),
        ("autothrottle", "off", False),
        ("autothrottle", "false", False),
        ("autothrottle", "0", False),
        ("autothrottle", "yes", True),
        ("autothrottle", "TRUE", True),
        ("max_pages", "none", None),
        ("max_pages", "", None),
        ("max_pages", "12", 12),
        ("retry_http_codes", "500,503", [500, 503]),
        ("retry_http_codes", "[429, 503]", [429, 503]),
        ("retry_http_codes", "", []),
        ("pipelines", "a.B, c.D", ["a.B", "c.D"]),
        (
            "default_headers",
            '{"X-Token": "1", "Accept": "text/html"}',
            {"X-Token": "1", "Accept": "text/html"},
        ),
        ("user_agent", "my bot/1.0", "my bot/1.0"),
    ],
)
def test_strings_from_the_command_line_are_coerced(key: str, text: str, expected: object) -> None:
    assert coerce(key, text) == expected
    assert getattr(Settings.layered(("command line", {key: text})), key) == expected


def test_python_values_from_custom_settings_are_checked_not_converted_loosely() -> None:
    assert coerce("concurrency", 8) == 8
    assert coerce("autothrottle", False) is False
    assert coerce("retry_http_codes", (500, 502)) == [500, 502]
    for key, value in [
        ("concurrency", 8.5),
        ("concurrency", True),
        ("timeout_total", True),
        ("timeout_total", "fast"),
        ("autothrottle", 1),
        ("autothrottle", "maybe"),
        ("user_agent", 5),
        ("retry_http_codes", 503),
        ("retry_http_codes", "500,abc"),
        ("retry_http_codes", "[500,"),
        ("default_headers", "[1, 2]"),
        ("default_headers", "{not json"),
        ("concurrency", "none"),
    ]:
        with pytest.raises(UsageError, match=f"setting {key}"):
            coerce(key, value)


def test_nan_is_not_a_number_of_seconds() -> None:
    with pytest.raises(UsageError, match="timeout_total"):
        Settings.layered(("command line", {"timeout_total": "nan"}))


def test_unknown_key_suggests_the_closest() -> None:
    with pytest.raises(
        UsageError, match=r"unknown setting 'concurency' \(did you mean 'concurrency'\?\)"
    ):
        Settings.layered(("command line", {"concurency": "3"}))
    with pytest.raises(UsageError, match=r"^Tuned.custom_settings: unknown setting 'zzzz'$"):
        Settings.layered(("Tuned.custom_settings", {"zzzz": 1}))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("concurrency", "0", "concurrency: must be > 0"),
        ("concurrency", "-3", "concurrency: must be > 0"),
        ("domain_concurrency", "0", "domain_concurrency: must be > 0"),
        ("max_items", "0", "max_items: must be > 0"),
        ("max_retries", "-1", "max_retries: must be >= 0"),
        ("timeout_total", "0", "timeout_total: must be > 0"),
        ("log_level", "LOUD", "unknown level 'LOUD'"),
    ],
)
def test_bad_values_are_usage_errors_naming_layer_and_key(
    key: str, value: str, message: str
) -> None:
    with pytest.raises(UsageError, match=f"^command line: .*{message}"):
        Settings.layered(("command line", {key: value}))


def test_an_error_names_the_layer_it_came_from() -> None:
    class Broken(Spider):
        custom_settings: ClassVar[dict[str, object]] = {"concurrency": 0}

    with pytest.raises(UsageError, match=r"^Broken\.custom_settings: "):
        build_settings(Broken, {"max_retries": "2"})
    with pytest.raises(UsageError, match=r"^profile: setting concurrency"):
        build_settings(Spider, {"max_retries": "2"}, {"concurrency": -1})
    # A wrong type is an error in its own layer, even when a later layer overrides it.
    with pytest.raises(UsageError, match=r"^profile: setting concurrency"):
        build_settings(Spider, {"concurrency": "2"}, {"concurrency": "many"})
    # An out-of-range value a later layer replaces is never used, so it is no error.
    assert build_settings(Spider, {"max_retries": "2"}, {"max_retries": -1}).max_retries == 2


def test_derived_domain_caps() -> None:
    assert Settings(concurrency=10).domain_start == 10
    assert Settings(concurrency=10, domain_concurrency=3).domain_start == 3
    # Never above the global cap.
    assert Settings(concurrency=4, domain_concurrency=8).domain_start == 4
    assert Settings(concurrency=10, domain_concurrency_max=50).domain_max == 10
    assert Settings(concurrency=10, domain_concurrency=2, domain_concurrency_max=6).domain_max == 6
