"""A login form with a CSRF token and a session cookie, through the real crawler:
from_response fills the form, the transport's cookie jar carries the session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sites import serve
from spider_helpers import EXAMPLES, read_items, run_cli
from toolkit_sites import AccessLog, LoginState, login_app

from pooledcrawl import Engine, FormRequest, Request, Response, Settings, Spider
from pooledcrawl.items.jsonl import JsonLinesSink

pytestmark = pytest.mark.timeout(120)

SECRETS = {f"secret {page}-{i}" for page in (1, 2, 3) for i in range(5)}


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_cli_login_then_members_pages(tmp_path: Path, transport: str) -> None:
    log, state = AccessLog(), LoginState()
    extra = ["--http2"] if transport == "httpx" else []
    async with serve(login_app(log, state)) as base:
        result = await run_cli(
            "crawl",
            str(EXAMPLES / "login_form.py"),
            *("-a", f"base={base}", "-o", "out.jsonl", *extra),
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stderr
    items = read_items(tmp_path / "out.jsonl")
    assert {i["secret"] for i in items} == SECRETS
    assert len(items) == len(SECRETS)
    assert state.refusals == []
    assert len(state.logged_in) == 1
    assert log.entries[:3] == [
        ("GET", "/login", 200),
        ("POST", "/login", 302),
        ("GET", "/members", 200),
    ]


async def test_without_cookies_the_server_refuses_and_nothing_is_scraped(tmp_path: Path) -> None:
    log, state = AccessLog(), LoginState()
    async with serve(login_app(log, state)) as base:
        result = await run_cli(
            "crawl",
            str(EXAMPLES / "login_form.py"),
            *("-a", f"base={base}", "-o", "out.jsonl", "-s", "cookies=false"),
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stderr
    assert read_items(tmp_path / "out.jsonl") == []
    assert state.refusals == ["no session cookie"]
    assert ("GET", "/members", 200) not in log.entries


class Tamper(Spider):
    """Submits the login form with one thing wrong."""

    base = ""
    mode = "token"

    async def start(self) -> Any:
        yield Request(self.base + "/login", callback=self.login)

    def login(self, response: Response) -> Iterator[Request]:
        data: dict[str, str | None] = {"username": "alice", "password": "wonderland"}
        if self.mode == "token":
            data["csrf_token"] = "forged"
        elif self.mode == "no-token":
            data["csrf_token"] = None  # removes the hidden field
        elif self.mode == "password":
            data["password"] = "guess"
        yield FormRequest.from_response(
            response, formid="login", formdata=data, callback=self.after_login
        )

    def after_login(self, response: Response) -> Iterator[dict[str, str]]:
        yield {"status": str(response.status)}


@pytest.mark.parametrize(
    ("mode", "refusal"),
    [
        ("token", "bad csrf token"),
        ("no-token", "bad csrf token"),
        ("password", "bad credentials"),
    ],
)
async def test_server_rejects_a_wrong_or_missing_token(
    tmp_path: Path, mode: str, refusal: str
) -> None:
    log, state = AccessLog(), LoginState()
    async with serve(login_app(log, state)) as base:
        out = tmp_path / "items.jsonl"
        engine = Engine(
            Tamper(base=base, mode=mode),
            Settings(concurrency=2),
            sinks=[JsonLinesSink(str(out), overwrite=True)],
        )
        await engine.run()
    assert state.refusals == [refusal]
    assert state.logged_in == set()
    assert read_items(out) == []  # 403 does not reach the callback
