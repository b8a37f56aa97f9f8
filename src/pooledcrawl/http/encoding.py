"""The charset of a response body, found as browsers find it: the Content-Type
header, a BOM, a ``<meta>`` or XML declaration (through w3lib), and a ``<meta
charset>`` later in the head than w3lib looks; UTF-8 otherwise."""

from __future__ import annotations

import codecs
import functools
import re

from w3lib.encoding import (
    html_body_declared_encoding,
    html_to_unicode,
    http_content_type_encoding,
    read_bom,
    resolve_encoding,
)

__all__ = ["body_encoding", "declared", "decode_body", "is_utf8", "late_declared"]

_CHARSET_RE = re.compile(r"charset=[\"']?([\w.:-]+)", re.I)
#: how far w3lib's html_body_declared_encoding looks for a declaration
_W3LIB_SCAN = 4096
_META_CHARSET = re.compile(rb"<meta\s[^>]*charset", re.I)
_BOMS = (b"\xef\xbb\xbf", b"\xff", b"\xfe")


def decode_body(content_type: str, body: bytes) -> tuple[str, str]:
    """``(encoding, text)``: ``body`` decoded with its charset, errors replaced."""
    match = _CHARSET_RE.search(content_type)
    if match is not None and not body.startswith(_BOMS):
        encoding = resolve_encoding(match.group(1))
        if encoding is not None:
            return encoding, body.decode(encoding, "replace")
    try:
        return html_to_unicode(content_type, body, auto_detect_fun=late_declared)
    except (LookupError, ValueError):
        return "utf-8", body.decode("utf-8", "replace")


def body_encoding(content_type: str, body: bytes) -> str:
    """The charset :func:`decode_body` decodes with, found the same way without decoding."""
    match = _CHARSET_RE.search(content_type)
    if match is not None and not body.startswith(_BOMS):
        encoding = resolve_encoding(match.group(1))
        if encoding is not None:
            return encoding
    bom, _ = read_bom(body)
    return (
        bom
        or http_content_type_encoding(content_type)
        or declared(body)
        or late_declared(body)
        or "utf-8"
    )


def declared(body: bytes) -> str | None:
    """``html_body_declared_encoding(body)``, answered at once for the usual page: w3lib
    stops scanning at ``<body``, and before it only a meta tag naming "charset" or
    an XML declaration can declare anything (comments are skipped, so any comment
    there sends the page to w3lib)."""
    end = body.find(b"<body", 0, 4096)
    if end != -1:
        head = body[:end].lower()
        if b"charset" not in head and b"<?xml" not in head and b"<!--" not in head:
            return None
    return html_body_declared_encoding(body)


def late_declared(body: bytes) -> str | None:
    """A ``<meta charset>`` in the head past the 4 KB w3lib scans: browsers honour
    one anywhere in the head (they start decoding again when the parser reaches
    it; HTML Standard, "changing the encoding while parsing"). Long inline
    scripts and styles put it there. Two ``find`` calls bound the search to the
    head, so a page with its ``<body>`` early pays nothing more."""
    if len(body) <= _W3LIB_SCAN:
        return None
    ends = [i for i in (body.find(b"<body"), body.find(b"<BODY")) if i != -1]
    end = min(ends) if ends else len(body)
    if end <= _W3LIB_SCAN:
        return None
    match = _META_CHARSET.search(body, _W3LIB_SCAN - 512, end)
    if match is None:
        return None
    return html_body_declared_encoding(body[match.start() : match.start() + 1024])


@functools.lru_cache(maxsize=64)
def is_utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False
