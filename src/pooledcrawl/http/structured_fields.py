"""A small, forgiving reader for structured-field lists (RFC 8941), as rate-limit
headers use them. Pure: malformed input gives None, never an exception."""

from __future__ import annotations

import re

__all__ = ["Member", "number", "sf_list"]

#: Longest header value we look at; anything longer is malformed for our purposes.
MAX_VALUE = 512

#: one list member: its item (a number as float, a string or a token) and parameters
Member = tuple[float | str | None, dict[str, float | str | bool]]

_TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9_.:/%*!#$&'+^`|~-]*")
_NUMBER = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,6})?")
_KEY = re.compile(r"[a-z*][a-z0-9_.*-]*")


def sf_list(text: str) -> list[Member] | None:
    """Members of a structured-field list as ``(item, params)``; None if malformed.

    Items are numbers (as float), strings or tokens. A dictionary member
    ``key=value`` comes back as the item ``"=key=value"`` so callers can tell.
    """
    if len(text) > MAX_VALUE:
        return None
    members: list[Member] = []
    pos, end = 0, len(text)
    while True:
        pos = _skip_ws(text, pos)
        if pos >= end:
            return members or None
        item, pos = _bare_item(text, pos)
        if item is None:
            match = _KEY.match(text, pos)
            if match is None or match.end() >= end or text[match.end()] != "=":
                return None
            value, after = _bare_item(text, match.end() + 1)
            if value is None:
                return None
            item = f"={match.group()}={value}"
            pos = after
        params: dict[str, float | str | bool] = {}
        while pos < end and text[pos] == ";":
            pos = _skip_ws(text, pos + 1)
            match = _KEY.match(text, pos)
            if match is None:
                return None
            pos = match.end()
            if pos < end and text[pos] == "=":
                value, pos = _bare_item(text, pos + 1)
                if value is None:
                    return None
                params[match.group()] = value
            else:
                params[match.group()] = True
        members.append((item, params))
        pos = _skip_ws(text, pos)
        if pos >= end:
            return members
        if text[pos] != ",":
            return None
        pos += 1


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _bare_item(text: str, pos: int) -> tuple[float | str | None, int]:
    if pos >= len(text):
        return None, pos
    char = text[pos]
    if char == '"':
        close = text.find('"', pos + 1)
        if close == -1:
            return None, pos
        return text[pos + 1 : close], close + 1
    if char == "-" or char.isdigit():
        match = _NUMBER.match(text, pos)
        if match is None:
            return None, pos
        return float(match.group()), match.end()
    match = _TOKEN.match(text, pos)
    if match is None or (match.end() < len(text) and text[match.end()] == "="):
        return None, pos  # ``key=value``: a dictionary member, not an item
    return match.group(), match.end()


def number(text: str) -> float | None:
    match = _NUMBER.fullmatch(text.strip()) if isinstance(text, str) else None
    return float(match.group()) if match else None
