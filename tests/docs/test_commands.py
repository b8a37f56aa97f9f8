"""Every ``pooledcrawl`` command shown in the tutorial and the deployment guide is
one the command line accepts: its subcommand and every flag exist, and the values
parse. (The tutorial's crawl itself is run in ``test_tutorial.py``.)"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from pooledcrawl.cli import build_parser
from pooledcrawl.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
#: pages whose commands are checked; README-derived pages have their own tests
PAGES = ("index.md", "getting-started.md", "deploying.md")


def commands(markdown: str) -> list[list[str]]:
    """The argument lists of ``pooledcrawl`` in the page's bash and ini code blocks
    (a ``docker run IMAGE`` of the ``pooledcrawl`` image counts: its entry point is
    the command)."""
    found: list[list[str]] = []
    for block in re.findall(r"^```(?:bash|ini)[^\n]*\n(.*?)^```", markdown, re.M | re.S):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.removeprefix("ExecStart=")
            if line.lstrip().startswith("#"):
                continue
            for segment in re.split(r"&&|\|\|?|;", line):
                words = shlex.split(segment, comments=True)
                for i, word in enumerate(words):
                    if (word == "pooledcrawl" or word.endswith("/pooledcrawl")) and (
                        i == 0 or words[i - 1] not in ("-t", "--tag")
                    ):
                        found.append(words[i + 1 :])
                        break
    return found


def _accepts(argv: list[str]) -> None:
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:  # --version and --help exit 0 after printing
        assert exc.code == 0, argv


@pytest.mark.parametrize("page", PAGES)
def test_every_command_on_the_page_parses(page: str, capsys: pytest.CaptureFixture[str]) -> None:
    found = commands((ROOT / "docs" / page).read_text(encoding="utf-8"))
    assert found, f"no pooledcrawl command found in {page}"
    for argv in found:
        _accepts(argv)


def test_the_extraction_finds_the_commands_and_a_wrong_flag_fails() -> None:
    page = (ROOT / "docs" / "deploying.md").read_text(encoding="utf-8")
    found = commands(page)
    subcommands = [argv[0] for argv in found]
    # docker run ... pooledcrawl crawl; ExecStart=... pooledcrawl worker; jobs status
    assert {"crawl", "worker", "jobs"} <= set(subcommands)
    assert "build" not in subcommands  # `docker build -t pooledcrawl .` is not one
    worker = next(argv for argv in found if argv[0] == "worker")
    assert worker[worker.index("--frontier") + 1] == "redis://redis-host:6379/0"
    with pytest.raises(UsageError, match="unrecognized arguments"):
        _accepts(["crawl", "spider.py", "--no-such-flag"])
