"""A custom sink for ``-o myscheme://...`` through the ``sink_schemes`` setting."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from sites import link_graph_app, serve

from pooledcrawl import Response, Settings, Spider, UsageError, run_async
from pooledcrawl.runner import open_sink

#: what every MemorySink wrote, by target (a test's view into the sink)
WRITTEN: dict[str, list[Any]] = {}


class MemorySink:
    """Keeps items in WRITTEN[target]; ``overwrite`` starts the list over."""

    def __init__(self, target: str, *, overwrite: bool = False) -> None:
        self.target = target
        self.overwrite = overwrite

    async def open(self, spider: Spider) -> None:
        if self.overwrite or self.target not in WRITTEN:
            WRITTEN[self.target] = []

    async def write(self, items: Sequence[Any]) -> None:
        WRITTEN[self.target].extend(items)

    async def flush(self) -> None: ...

    async def close(self) -> None: ...

    def emergency_flush(self) -> None: ...

    def stats(self) -> dict[str, Any]:
        return {"written": len(WRITTEN[self.target])}


class Pages(Spider):
    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url}
        yield from response.follow_all(css="a")


async def test_a_registered_scheme_sends_items_to_the_custom_sink() -> None:
    async with serve(link_graph_app(12)) as base:

        class Start(Pages):
            start_urls = [f"{base}/p/0.html"]

        settings = {"sink_schemes": {"mem": MemorySink}, "concurrency": 4}
        stats = await run_async(Start, settings=settings, output="mem://bucket")
        again = await run_async(Start, settings=settings, output="mem://bucket")
    assert stats.items == again.items == 12
    assert len(WRITTEN["mem://bucket"]) == 24  # appended, as -o does
    assert {item["url"] for item in WRITTEN["mem://bucket"]} == {
        f"{base}/p/{i}.html" for i in range(12)
    }


def test_a_sink_named_by_dotted_path_and_from_target() -> None:
    class Configured(MemorySink):
        @classmethod
        def from_target(cls, target: str, overwrite: bool, settings: Settings) -> Configured:
            sink = cls(target.upper(), overwrite=overwrite)
            sink.fields = settings.csv_fields  # type: ignore[attr-defined]
            return sink

    by_path = open_sink("mem://x", True, Settings(sink_schemes={"mem": f"{__name__}.MemorySink"}))
    assert isinstance(by_path, MemorySink) and by_path.overwrite
    built = open_sink(
        "Cfg://y", False, Settings(sink_schemes={"cfg": Configured}, csv_fields=["a"])
    )
    assert built.target == "CFG://Y" and built.fields == ["a"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("schemes", "message"),
    [
        ({"mem": "nowhere.Sink"}, "cannot import 'nowhere'"),
        ({"mem": dict}, "output mem://: ValueError"),
    ],
)
def test_a_broken_custom_sink_is_a_usage_error(schemes: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        open_sink("mem://x", False, Settings(sink_schemes=schemes))


@pytest.mark.parametrize("bad", [{"1x": "a.B"}, {"mem": 3}, "[1]"])
def test_sink_schemes_is_checked_as_a_setting(bad: Any) -> None:
    with pytest.raises(UsageError, match="sink_schemes"):
        Settings.layered(("test", {"sink_schemes": bad}))
