"""The ``pooledcrawl`` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from pooledcrawl._version import __version__
from pooledcrawl.cli import (
    crawl,
    demo,
    distributed,
    fetch,
    new,
    parse,
    probe,
    profiles,
    shell,
    size,
)
from pooledcrawl.errors import UsageError

__all__ = ["main"]

log = logging.getLogger("pooledcrawl")

#: Each command module has ``add_parser(subparsers)`` and ``run(args) -> int``.
COMMANDS = (crawl, demo, distributed, profiles, size, probe, fetch, parse, shell, new)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pooledcrawl", description="Concurrent web crawling.")
    parser.add_argument("--version", action="version", version=f"pooledcrawl {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        raw = list(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(raw)
        args._argv = raw  # workers started by `crawl --workers N` reuse the command line
        _setup_logging(getattr(args, "log_level", None) or "INFO")
        code: int = args.run(args)
        return code
    except UsageError as exc:
        # one line, whatever the message holds (an exception text from a user's module...)
        message = " ".join(str(exc).split("\n"))
        print(f"pooledcrawl: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader left early (`pooledcrawl fetch URL | head`): exit as a process
        # killed by SIGPIPE would, without a traceback at interpreter shutdown
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception:
        log.exception("internal error")
        return 1


def _setup_logging(level: str) -> None:
    if level.upper() not in logging.getLevelNamesMapping():
        raise UsageError(f"unknown log level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
