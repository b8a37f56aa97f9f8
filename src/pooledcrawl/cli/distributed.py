"""Distributed jobs on Redis: ``crawl --frontier``, ``worker`` and ``jobs status|purge``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import orjson

from pooledcrawl.cli.options import add_crawl_options, add_distributed_options, job_from_args
from pooledcrawl.errors import UsageError
from pooledcrawl.redis.keys import JobKeys

__all__ = ["add_distributed_options", "add_parser", "run_distributed_crawl"]

# add_distributed_options lives in cli/options.py (shared with crawl); re-exported here


def add_parser(subparsers: Any) -> None:
    worker = subparsers.add_parser("worker", help="join a distributed job as one worker")
    worker.add_argument("target", help="the spider, as for crawl")
    add_crawl_options(worker)
    add_distributed_options(worker, workers=False)
    worker.set_defaults(run=run_worker_command)

    jobs = subparsers.add_parser("jobs", help="inspect or delete a distributed job")
    jobs.add_argument("action", choices=("status", "purge"))
    jobs.add_argument("job", help="the job's name")
    jobs.add_argument("--frontier", required=True, metavar="URL", help="redis://host:port/db")
    jobs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    jobs.add_argument(
        "--force", action="store_true", help="purge even while workers are alive (they stop)"
    )
    jobs.set_defaults(run=run_jobs_command)


def _require(args: argparse.Namespace) -> tuple[str, str]:
    if not args.frontier or not args.job:
        raise UsageError("a distributed crawl needs both --frontier redis://... and --job NAME")
    JobKeys(args.job)  # a bad job name: exit 2 here, not once per worker process
    return args.frontier, args.job


def run_worker_command(args: argparse.Namespace) -> int:
    from pooledcrawl.distributed.worker import run_worker
    from pooledcrawl.runner import write_stats_dict

    frontier, job_name = _require(args)
    job = job_from_args(args, args.target)
    data, code = run_worker(job, frontier, job_name)
    write_stats_dict(data, job.stats_path)
    _write_report(args, data)
    _print_job_line(job_name, data, 1)
    return code


def _write_report(args: argparse.Namespace, data: dict[str, Any]) -> None:
    if args.report:
        from pooledcrawl.report import write_report

        write_report(data, args.report)


def _print_job_line(job_name: str, data: dict[str, Any], workers: int) -> None:
    print(
        f"pooledcrawl: job {job_name}: pages {data.get('pages', 0)}  items {data.get('items', 0)}"
        f"  failed {data.get('failed', 0)}  workers {workers}",
        file=sys.stderr,
    )


def run_distributed_crawl(args: argparse.Namespace) -> int:
    """``crawl --frontier``: one worker here, or ``--workers N`` worker processes."""
    from pooledcrawl.distributed.worker import run_local_workers, run_worker
    from pooledcrawl.runner import write_stats_dict

    frontier, job_name = _require(args)
    workers = args.workers or 1
    if workers < 1:
        raise UsageError(f"--workers must be >= 1, got {workers}")
    job = job_from_args(args, args.target)  # validates everything before starting workers
    if workers == 1:
        data, code = run_worker(job, frontier, job_name)
    else:
        data, code = run_local_workers(
            _worker_argv(args._argv), workers, job.outputs, job.stats_path
        )
    write_stats_dict(data, job.stats_path)
    _write_report(args, data)  # from the merged stats of every worker
    _print_job_line(job_name, data, workers)
    return code


def _worker_argv(argv: list[str]) -> list[str]:
    """The crawl command line minus what the parent handles itself (outputs, stats, workers)."""
    out: list[str] = []
    skip_next = False
    for index, arg in enumerate(argv):
        if skip_next:
            skip_next = False
            continue
        if index == 0 and arg == "crawl":
            continue
        if arg in ("-o", "-O", "--stats", "--workers", "--report"):
            skip_next = True
            continue
        if arg.startswith(("--stats=", "--workers=", "--report=")):
            continue
        out.append(arg)
    return out


def run_jobs_command(args: argparse.Namespace) -> int:
    from pooledcrawl.distributed.worker import job_status, purge_job

    if args.action == "purge":
        deleted = asyncio.run(purge_job(args.frontier, args.job, force=args.force))
        print(f"purged job {args.job}: {deleted} keys deleted")
        return 0
    status = asyncio.run(job_status(args.frontier, args.job))
    if args.json:
        sys.stdout.write(orjson.dumps(status, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    print(f"job {status['job']} (spider {status['spider']})")
    for key in ("pending", "leased", "delayed", "done", "failed", "workers_alive"):
        print(f"  {key:<14}{status[key]}")
    if status["domains"]:
        print(f"  {'domain':<28}{'limit':>8}{'rate/s':>10}{'in use':>8}")
        for host, info in sorted(status["domains"].items()):
            rate = info["rate"]
            print(
                f"  {host:<28}{info['limit'] or '-':>8}"
                f"{'-' if rate is None else f'{float(rate):.1f}':>10}{info['granted']:>8}"
            )
    return 0
