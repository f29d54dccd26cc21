"""Document text shown verbatim on the review screen: Markdown escaping.

Its own module because every page and the login need it and it needs nothing (the login
module and the shared page helpers used to import each other for it).
"""

from __future__ import annotations

import re

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")
# GitHub-flavoured Markdown links bare URLs, www. names and e-mail addresses after escapes are
# resolved, so escaping cannot stop it: an invisible word joiner (U+2060) inside the pattern does.
_AUTOLINKED = re.compile(r"(?i)(?<=https)(?=:)|(?<=http)(?=:)|(?<=ftp)(?=:)|(?<=www)(?=\.)|(?<=@)")
WORD_JOINER = "\u2060"


def esc(text: object) -> str:
    """Text shown verbatim inside Markdown: no emphasis, links (bare URLs and e-mail addresses
    included), LaTeX ($) or colour tags."""
    plain = _AUTOLINKED.sub(WORD_JOINER, str(text))
    return _MARKDOWN_SPECIAL.sub(r"\\\1", plain).replace("\n", " ")
