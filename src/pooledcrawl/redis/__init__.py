"""What every Redis-backed component shares (the frontier in ``frontier/redis.py``, the
job-wide limits and workers in ``distributed/``): the job's key names. Below both, so
neither imports the other for them."""
