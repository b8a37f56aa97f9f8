"""Griffe extension: Sphinx cross-reference roles in docstrings, rendered as code.

The docstrings follow the Python convention of ``:class:`Rule``` roles, which
Markdown would show verbatim; on the site they become code spans. Done at load time
so the source keeps the form that editors and ``help()`` understand.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

# :class:`Rule`, :meth:`~pooledcrawl.Spider.parse` (the ~ keeps the last part only).
_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):`(~?)([^`]+)`(\\ )?")


def convert(text: str) -> str:
    def code(match: re.Match[str]) -> str:
        target = match.group(2)
        if match.group(1):
            target = target.rsplit(".", 1)[-1]
        return f"`{target}`"

    return _ROLE.sub(code, text)


class RstRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
