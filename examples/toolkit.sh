#!/usr/bin/env bash
# The spider author's toolkit against the bundled demo bookstore, start to finish.
# Run from a checkout: bash examples/toolkit.sh
set -eu  # no pipefail: `| head` closes the pipe early on purpose
workdir=$(mktemp -d)
trap 'kill "$server" 2>/dev/null; rm -rf "$workdir"' EXIT

# the demo site on 127.0.0.1, in the background (`demo --serve` prints its URL)
pooledcrawl demo --serve >"$workdir/demo.log" &
server=$!
for _ in $(seq 50); do grep -q http "$workdir/demo.log" 2>/dev/null && break; sleep 0.1; done
site=$(grep -o 'http://[^ ]*/' "$workdir/demo.log")

# 1. the page as the crawler gets it: headers sent and received, then the body
pooledcrawl fetch --headers "$site"
pooledcrawl fetch "$site" | head -c 300; echo

# 2. one callback on one page: items and requests, one JSON object a line
pooledcrawl parse "$site" --spider examples/bookstore.py | head -3
pooledcrawl parse "${site}book/0.html" --spider examples/bookstore.py --callback parse_book

# 3. a shell around the page (IPython if installed; here the standard REPL, fed stdin)
pooledcrawl shell "$site" --shell python <<'PY'
print(response.status, response.css("title::text").get())
fetch(response.urljoin("book/1.html"))
print(response.css("h1::text").get(), response.css(".price::text").get())
PY

# 4. a new spider from the basic template, crawled at once
(cd "$workdir" && pooledcrawl new books "$site" && pooledcrawl crawl books.py --max-pages 20 -O books.jsonl)
wc -l "$workdir/books.jsonl"
