"""Document text shown verbatim on the review screen: Markdown escaping.

Its own module because every page and the login need it and it needs nothing (the login
module and the shared page helpers used to import each other for it).
"""

from __future__ import annotations

import re

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def esc(text: object) -> str:
    """Text shown verbatim inside Markdown: no emphasis, links, LaTeX ($) or colour tags."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")
