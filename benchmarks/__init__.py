"""Benchmarks for pooledcrawl: crawl throughput next to Scrapy, Crawlee and a
hand-written aiohttp loop (``python -m benchmarks.throughput``), and the memory
cost of pending requests (``python -m benchmarks.memory``).

Everything here stands alone: the site generator, the servers (nginx, or a
Python fallback) and the contenders' code.
"""
