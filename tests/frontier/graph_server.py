"""Serve the tests' link graph (tests/sites.py) in its own process on 127.0.0.1.

python graph_server.py PAGES   -> prints the base URL on one line, serves until killed
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sites import link_graph_app, serve


async def main(pages: int) -> None:
    async with serve(link_graph_app(pages)) as base:
        print(base, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
