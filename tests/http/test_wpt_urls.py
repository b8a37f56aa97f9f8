"""The resolver against the WHATWG URL test data of web-platform-tests.

``data/urltestdata.json`` is wpt's ``url/resources/urltestdata.json``, vendored
unmodified (see ``data/README.md``). Two groups of its cases apply to a crawler:

* **links**: every case whose base is http(s) and whose input resolves to http(s)
  or fails. The input is an href on a page at ``base``: the resolver must give
  ``href`` exactly (fragment included, as ``a.href`` has it), or reject it; and a
  Request for it must carry that URL, or be rejected as InvalidURL.
* **request URLs**: cases with no base (``about:blank``/null) whose input is an
  http(s) URL, i.e. a URL a spider yields as written: it must be sent as ``href``.

Pass rate: 150/150 links and 256/256 request URLs. Known differences: none in the
resolver. The engine rejects one URL the parser accepts, on purpose: port 0
(``http://f:0/c``), which browsers parse but refuse to connect to (a "bad port" in
the Fetch Standard), so a Request for it is InvalidURL.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pooledcrawl.http.url import InvalidURL, Resolver, prepare_url, resolve

DATA = Path(__file__).parent / "data" / "urltestdata.json"
CASES: list[dict[str, Any]] = [
    c for c in json.loads(DATA.read_text("utf-8")) if isinstance(c, dict)
]
# what the standard strips from both ends of an input before parsing
_C0_OR_SPACE = "".join(map(chr, range(0x21)))
# browsers parse these but never connect to them (Fetch Standard: bad port)
NOT_FETCHED = {"http://f:0/c"}


def _http(case: dict[str, Any]) -> bool:
    return str(case.get("href", "")).startswith(("http:", "https:"))


def _http_input(case: dict[str, Any]) -> bool:
    text = re.sub("[\t\n\r]", "", case["input"].strip(_C0_OR_SPACE))
    return re.match("(?i)https?:", text) is not None


LINKS = [
    c
    for c in CASES
    if isinstance(c["base"], str)
    and c["base"].startswith(("http:", "https:"))
    and (c.get("failure") or _http(c))
]
ABSOLUTE = [
    c
    for c in CASES
    if not (isinstance(c["base"], str) and c["base"].startswith(("http:", "https:")))
    and ((not c.get("failure") and _http(c)) or (c.get("failure") and _http_input(c)))
]


def _id(case: dict[str, Any]) -> str:
    return repr(case["input"])[:50]


def test_the_vendored_data_is_whole() -> None:
    text = DATA.read_text("utf-8")
    assert len(text) == 152_346
    assert len(CASES) == 601
    assert (len(LINKS), sum(1 for c in LINKS if c.get("failure"))) == (150, 45)
    assert (len(ABSOLUTE), sum(1 for c in ABSOLUTE if c.get("failure"))) == (256, 149)


@pytest.mark.parametrize("case", LINKS, ids=_id)
def test_links_resolve_as_browsers_resolve_them(case: dict[str, Any]) -> None:
    base, href = case["base"], case["input"]
    joined = Resolver(base).join(href)  # what Response.follow() puts in the Request
    if case.get("failure"):
        with pytest.raises(InvalidURL):
            resolve(href, base)
        with pytest.raises(InvalidURL):
            prepare_url(joined)
        return
    assert resolve(href, base) == case["href"]
    assert joined == case["href"]
    if case["href"] in NOT_FETCHED:
        with pytest.raises(InvalidURL, match="port 0"):
            prepare_url(joined)
    else:
        assert prepare_url(joined)[0] == case["href"]


@pytest.mark.parametrize("case", ABSOLUTE, ids=_id)
def test_request_urls_are_sent_as_browsers_send_them(case: dict[str, Any]) -> None:
    url = case["input"]
    if case.get("failure"):
        with pytest.raises(InvalidURL):
            resolve(url)
        with pytest.raises(InvalidURL):
            prepare_url(url)
        return
    assert resolve(url) == case["href"]
    assert prepare_url(url)[0] == case["href"]
