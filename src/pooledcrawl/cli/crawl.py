"""``pooledcrawl crawl TARGET``: run a spider."""

from __future__ import annotations

import argparse
from typing import Any

from pooledcrawl.cli.options import (
    add_crawl_options,
    add_distributed_options,
    cli_settings,
    job_from_args,
    parse_pairs,
)
from pooledcrawl.errors import UsageError
from pooledcrawl.runner import print_summary, run_job

# the shared options moved to cli/options.py; re-exported for existing imports
__all__ = ["add_crawl_options", "add_parser", "cli_settings", "job_from_args", "parse_pairs", "run"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("crawl", help="run a spider")
    parser.add_argument(
        "target", help="path/to/file.py, file.py:ClassName or package.module:ClassName"
    )
    add_crawl_options(parser)
    add_distributed_options(parser, workers=True)
    resume = parser.add_argument_group("pause and resume")
    resume.add_argument(
        "--jobdir",
        metavar="DIR",
        help="keep the job in DIR (SQLite): re-running the same command resumes it",
    )
    resume.add_argument("--fresh", action="store_true", help="with --jobdir: start the job over")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.cache_mode and not args.cache:
        raise UsageError("--cache-mode needs --cache DIR")
    if args.fresh and not args.jobdir:
        raise UsageError("--fresh needs --jobdir DIR")
    if args.jobdir and (args.frontier or args.job or args.workers):
        raise UsageError(
            "--jobdir keeps a job on this machine: it cannot be combined with "
            "--frontier, --job or --workers"
        )
    if args.frontier or args.job or args.workers:
        from pooledcrawl.cli.distributed import run_distributed_crawl

        return run_distributed_crawl(args)
    job = job_from_args(args, args.target)
    stats, code = run_job(job)
    print_summary(stats)
    if args.report:
        from pooledcrawl.report import write_report

        write_report(stats.to_dict(), args.report)
    return code
