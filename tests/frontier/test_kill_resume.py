"""Pause and resume from the command line: kill -9 three times, then Ctrl-C, against a
5,000-page link graph served by its own process on 127.0.0.1."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

HERE = Path(__file__).resolve().parent
SPIDER = HERE / "resume_spider.py"
PAGES = 5000
CONCURRENCY = 16


@pytest.fixture(scope="module")
def graph_site() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "graph_server.py"), str(PAGES)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:"), base
        yield base
    finally:
        proc.kill()
        proc.wait()


def crawl_command(base: str, tmp: Path, spider: str = "ResumeSpider", *extra: str) -> list[str]:
    return [
        *(sys.executable, "-m", "pooledcrawl", "crawl", f"{SPIDER}:{spider}"),
        *("-a", f"start={base}/p/0.html", "-o", str(tmp / "items.jsonl")),
        *("--jobdir", str(tmp / "job"), "--stats", str(tmp / "stats.json")),
        *("--concurrency", str(CONCURRENCY), "--log-level", "WARNING", "-s", "autothrottle=off"),
        *extra,
    ]


def feed(tmp: Path) -> list[str]:
    path = tmp / "items.jsonl"
    if not path.exists():
        return []
    return [orjson.loads(line)["url"] for line in path.read_bytes().splitlines()]


def line_count(tmp: Path) -> int:
    try:
        return (tmp / "items.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def run_until(command: list[str], tmp: Path, lines: int, sig: signal.Signals) -> int:
    """Start the crawl, signal it once the feed has ``lines`` lines; its exit code."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while line_count(tmp) < lines and proc.poll() is None:
            assert time.monotonic() < deadline, "the crawl did not get far enough"
            time.sleep(0.005)
        assert proc.poll() is None, "the crawl ended before it could be interrupted"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert b"Traceback" not in err, err.decode()
    return proc.returncode


def saved_state(tmp: Path) -> dict[str, int]:
    with sqlite3.connect(tmp / "job" / "frontier.sqlite3") as db:
        (raw,) = db.execute("SELECT value FROM meta WHERE key = 'state'").fetchone()
    state: dict[str, int] = orjson.loads(raw)
    return state


def stats(tmp: Path) -> dict[str, object]:
    data: dict[str, object] = orjson.loads((tmp / "stats.json").read_bytes())
    return data


def test_kill_9_three_times_then_finish(graph_site: str, tmp_path: Path) -> None:
    command = crawl_command(graph_site, tmp_path)
    duplicates = 0
    for quarter in (1, 2, 3):
        code = run_until(command, tmp_path, PAGES * quarter // 4, signal.SIGKILL)
        assert code == -signal.SIGKILL
        urls = feed(tmp_path)
        # Only pages whose items were flushed just as their acks were being committed
        # come twice: at most the in-flight count per kill.
        new_duplicates = len(urls) - len(set(urls)) - duplicates
        assert 0 <= new_duplicates <= CONCURRENCY
        duplicates += new_duplicates
    done = subprocess.run(command, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()

    urls = feed(tmp_path)
    assert set(urls) == {f"{graph_site}/p/{i}.html" for i in range(PAGES)}  # nothing lost
    assert len(urls) - PAGES == duplicates <= 3 * CONCURRENCY
    data = stats(tmp_path)
    jobdir = data["jobdir"]
    assert isinstance(jobdir, dict) and jobdir["run"] == 4 and jobdir["resumed"]
    # The stats add up across the four runs: an item counted with a commit is in the
    # feed; only pages in flight at a kill were fetched (and counted) twice.
    assert PAGES <= data["items"] <= len(urls)
    pages = data["pages"]
    assert isinstance(pages, int) and PAGES <= pages <= PAGES + 3 * CONCURRENCY
    statuses = data["status_counts"]
    assert isinstance(statuses, dict) and list(statuses) == ["200"]
    assert data["requests"] >= statuses["200"] >= pages  # in flight at a kill: sent, not seen
    assert data["finish_reason"] == "finished"
    # spider.state is saved with each commit; pages fetched twice were parsed twice.
    assert PAGES <= saved_state(tmp_path)["parsed"] <= pages

    # The job is complete: the same command again finds nothing left to do.
    again = subprocess.run(command, capture_output=True, timeout=120)
    assert again.returncode == 0 and len(feed(tmp_path)) == len(urls)


def test_ctrl_c_then_resume_gives_no_duplicates(graph_site: str, tmp_path: Path) -> None:
    command = crawl_command(graph_site, tmp_path)
    code = run_until(command, tmp_path, PAGES // 4, signal.SIGINT)
    assert code == 130
    first = stats(tmp_path)
    assert first["finish_reason"] == "shutdown (SIGINT)"
    assert first["items"] == line_count(tmp_path) < PAGES // 2

    # Resume, and stop at half the site (pages count across runs).
    done = subprocess.run([*command, "--max-pages", str(PAGES // 2)], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    urls = feed(tmp_path)
    assert len(urls) == PAGES // 2 and Counter(urls).most_common(1)[0][1] == 1
    data = stats(tmp_path)
    assert data["items"] == data["pages"] == PAGES // 2
    assert data["finish_reason"] == "max_pages reached"
    assert saved_state(tmp_path) == {"parsed": PAGES // 2}  # each page parsed exactly once


def test_usage_errors_of_a_job_dir(graph_site: str, tmp_path: Path) -> None:
    first = subprocess.run(
        crawl_command(graph_site, tmp_path, "ResumeSpider", "--max-pages", "5"),
        capture_output=True,
        timeout=120,
    )
    assert first.returncode == 0, first.stderr.decode()

    other = subprocess.run(crawl_command(graph_site, tmp_path, "OtherSpider"), capture_output=True)
    assert other.returncode == 2
    lines = other.stderr.decode().strip().splitlines()
    assert lines == [
        f"pooledcrawl: error: job dir {tmp_path / 'job'} belongs to spider 'resume', "
        "not 'other': use another --jobdir, or add --fresh to start over"
    ]

    lam = subprocess.run(
        crawl_command(graph_site, tmp_path, "LambdaSpider", "--fresh"), capture_output=True
    )
    assert lam.returncode == 2
    err = lam.stderr.decode()
    assert "Traceback" not in err and "must be methods of LambdaSpider" in err

    fresh = subprocess.run(
        crawl_command(graph_site, tmp_path, "ResumeSpider", "--fresh", "--max-pages", "3"),
        capture_output=True,
        timeout=120,
    )
    assert fresh.returncode == 0, fresh.stderr.decode()
    data = stats(tmp_path)
    assert data["pages"] == 3 and not data["jobdir"]["resumed"]  # type: ignore[index]

    no_jobdir = subprocess.run(
        [*crawl_command(graph_site, tmp_path)[:5], "--fresh"], capture_output=True
    )
    assert no_jobdir.returncode == 2 and b"--fresh needs --jobdir" in no_jobdir.stderr
