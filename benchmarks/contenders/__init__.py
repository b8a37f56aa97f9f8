"""The crawlers the throughput benchmark runs, each as its own process.

Every contender crawls the benchmark site breadth-first from one start URL at a
given concurrency, writes one JSON line ``{"url", "name", "price"}`` per page,
and (except pooledcrawl, whose ``--stats`` file has ``elapsed_s``) writes the
seconds its crawl took to a timing file, so interpreter start-up and imports are
left out of pages/s for everyone alike.
"""
