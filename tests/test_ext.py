"""pooledcrawl.ext: the protocols a custom component implements, in one module."""

from __future__ import annotations

import typing

import pooledcrawl.ext as ext
from pooledcrawl.components import ordered_entries
from pooledcrawl.frontier.memory import MemoryFrontier
from pooledcrawl.throttle.fixed import FixedPolicy


def test_every_extension_protocol_is_exported_from_one_module() -> None:
    for name in ("Frontier", "Transport", "Sink", "ConcurrencyPolicy", "Middleware", "Extension"):
        assert name in ext.__all__ and hasattr(ext, name)
    assert set(typing.get_args(ext.Middleware)) == {ext.DownloaderMiddleware, ext.SpiderMiddleware}


def test_the_built_ins_satisfy_the_protocols_they_replace() -> None:
    # structural: every method the protocol declares exists on the built-in
    for protocol, builtin in ((ext.Frontier, MemoryFrontier), (ext.ConcurrencyPolicy, FixedPolicy)):
        wanted = {n for n in vars(protocol) if not n.startswith("_")}
        assert wanted <= set(dir(builtin)), wanted - set(dir(builtin))


def test_ordered_entries_merges_built_ins_lists_and_mappings() -> None:
    base = {"A": 100, "B": 900}
    assert ordered_entries(base, ["x.Mine", "y.Other"]) == ["A", "x.Mine", "y.Other", "B"]
    assert ordered_entries(base, {"x.Mine": 950, "A": None}) == ["B", "x.Mine"]
    assert ordered_entries(base, {"pkg.mod.B": 50}) == ["pkg.mod.B", "A"]  # moved by path


def test_the_engine_is_the_crawler_the_protocol_declares() -> None:
    from pooledcrawl import Engine, Settings, Spider

    engine = Engine(Spider(start_urls=[]), Settings())
    declared = {n for n in vars(ext.Crawler) if not n.startswith("_")}
    declared |= set(ext.Crawler.__annotations__)
    missing = {n for n in declared if not hasattr(engine, n)}
    assert not missing, missing


def test_the_components_that_need_the_crawl_declare_bind() -> None:
    from pooledcrawl.distributed.limits import SharedLimits
    from pooledcrawl.frontier.redis import RedisFrontier
    from pooledcrawl.frontier.sqlite import SQLiteFrontier

    for component in (SQLiteFrontier, RedisFrontier, SharedLimits):
        assert callable(getattr(component, "bind", None)), component
