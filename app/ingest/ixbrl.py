"""Inline XBRL: the contexts and units a filing declares and the value of each tagged fact.

    facts = FactReader(markup)
    fact = facts.read(element)      # a `Fact` record (its position is set by the reader)

A numeric fact (`ix:nonFraction`) is worth its printed text read with its `format` transform,
times 10^`scale`, negated when `sign="-"`; the result is an exact decimal string ("39.0",
scale 9 -> "39000000000"; "(1,234)" with sign "-" -> "-1234"). A text fact (`ix:nonNumeric`)
is worth its text (continuations followed, `ix:exclude` left out), read with its transform
when it has one: dates to ISO (`2024-09-28`, `--01-25` for a month and day), durations to
ISO 8601 (`ten years` -> `P10Y`), booleans to `true`/`false`, number words to numbers.
Transforms this module does not know (the SEC's state and exchange name codes, say) keep the
printed text. The period and dimensions come from the fact's `xbrli:context`, the unit from
its `xbrli:unit` (`USD`, `shares`, `USD/shares`).

Written here rather than taken from a library: ixbrlparse reads values as floats (39.0e9 is
not exact) and raises on transforms common in SEC filings (`ixt:date-monthname-day-year-en`,
`ixt-sec:duryear`, `ixt-sec:durwordsen`), and Arelle needs the whole taxonomy (a DTS load
from the network) to read a filing. The transforms are those of the XBRL International
registry (versions 1-5) and the SEC's `ixt-sec` set that filings use.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from app.ingest.htmltext import Markup, attr, is_nil, name_of, tags
from app.records import Fact

_log = logging.getLogger(__name__)

_EXCLUDE = tags("exclude", "ix:")
_TEXT_LIMIT = 300
_VALUE_LIMIT = 1000
_MONTHS = {
    m: i
    for i, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for m in names
}
_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
)
_TENS_WORDS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety"
_SMALL = {w: i for i, w in enumerate(_NUMBER_WORDS.split(" "))}
_TENS = {w: 10 * i for i, w in enumerate(_TENS_WORDS.split(" ")) if w != "_"}
_MAGNITUDES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_DURATION_UNITS = {"year": "Y", "month": "M", "week": "W", "day": "D"}


class TransformError(ValueError):
    """A fact's printed text does not fit its format."""


@dataclass(frozen=True, slots=True)
class _Context:
    start: str | None
    end: str | None
    dimensions: tuple[tuple[str, str], ...]


class FactReader:
    """The contexts, units and continuations of one filing, and `read` for its facts."""

    def __init__(self, markup: Markup) -> None:
        self.contexts: dict[str, _Context] = {}
        self.units: dict[str, str] = {}
        self.continuations: dict[str, Any] = {}
        root = markup.root
        for el in root.iter(*tags("context", "xbrli:")):
            self.contexts[el.get("id") or ""] = _context(el)
        for el in root.iter(*tags("unit", "xbrli:")):
            self.units[el.get("id") or ""] = _unit(el)
        for el in root.iter(*tags("continuation", "ix:")):
            if el.get("id"):
                self.continuations[el.get("id")] = el

    def read(self, el: Any) -> Fact:
        """The fact an `ix:nonFraction` / `ix:nonNumeric` element tags (position unset)."""
        return Fact.model_validate(self.fields(el))

    def fields(self, el: Any) -> dict[str, Any]:
        """`read` as a plain dict (the reader validates a page's facts in one go)."""
        numeric = name_of(el) == "ix:nonfraction"
        printed = " ".join(_text(el, limit=_TEXT_LIMIT * 2).split())
        fmt = attr(el, "format")
        scale = _int(attr(el, "scale"))
        value: str | None
        if is_nil(el):
            value = None
        elif numeric:
            try:
                value = number_value(printed, fmt, scale, attr(el, "sign") == "-")
            except TransformError as e:
                _log.info("fact %s: %s", attr(el, "id") or attr(el, "name"), e)
                value = printed
        else:
            value = self._text_value(el, printed, fmt)
        ctx = self.contexts.get(attr(el, "contextRef") or "")
        unit_ref = attr(el, "unitRef")
        return {
            "concept": attr(el, "name") or "",
            "value": value,
            "numeric": numeric,
            "text": printed if len(printed) <= _TEXT_LIMIT else printed[: _TEXT_LIMIT - 1] + "…",
            "unit": self.units.get(unit_ref, unit_ref) if unit_ref else None,
            "period_start": ctx.start if ctx else None,
            "period_end": ctx.end if ctx else None,
            "dimensions": dict(ctx.dimensions) if ctx else {},
            "scale": scale,
            "decimals": attr(el, "decimals"),
            "format": fmt,
            "context": attr(el, "contextRef"),
            "fact_id": attr(el, "id"),
        }

    def _text_value(self, el: Any, printed: str, fmt: str | None) -> str:
        text = " ".join(_text(el, exclude=True, limit=_VALUE_LIMIT * 2).split())
        seen: set[str] = set()
        nxt = attr(el, "continuedAt")
        while nxt and nxt not in seen and nxt in self.continuations and len(text) < _VALUE_LIMIT:
            seen.add(nxt)
            part = self.continuations[nxt]
            more = _text(part, exclude=True, limit=_VALUE_LIMIT * 2)
            text = f"{text} {' '.join(more.split())}".strip()
            nxt = attr(part, "continuedAt")
        if fmt:
            try:
                return text_value(text, fmt)
            except TransformError as e:
                _log.info("fact %s: %s", attr(el, "id") or attr(el, "name"), e)
        return text if len(text) <= _VALUE_LIMIT else text[: _VALUE_LIMIT - 1] + "…"


def _text(el: Any, *, exclude: bool = False, limit: int = 0) -> str:
    """An element's text content (with `exclude`, `ix:exclude` parts left out), stopping
    after about `limit` characters when it is set (text blocks hold whole notes)."""
    if len(el) == 0:
        return el.text or ""
    if not exclude or next(el.iter(*_EXCLUDE), None) is None:
        if not limit:
            return "".join(el.itertext())
        found: list[str] = []
        total = 0
        for piece in el.itertext():  # lazy, in libxml2: a text block stops after `limit`
            found.append(piece)
            total += len(piece)
            if total >= limit:
                break
        return "".join(found)
    parts: list[str] = []
    size = 0
    stack: list[tuple[Any, bool]] = [(el, False)]
    # an explicit stack: (element, True) stands for its tail, read after its subtree
    while stack and (not limit or size < limit):
        node, tail = stack.pop()
        piece = node.tail if tail else node.text
        if piece:
            parts.append(piece)
            size += len(piece)
        if tail:
            continue
        for child in reversed(node):
            stack.append((child, True))
            if not (exclude and name_of(child) == "ix:exclude"):
                stack.append((child, False))
    return "".join(parts)


def _int(value: str | None) -> int:
    try:
        return int(value) if value else 0
    except ValueError:
        return 0


def _qname_text(el: Any) -> str:
    return " ".join("".join(el.itertext()).split())


def _context(el: Any) -> _Context:
    start = end = None
    dims: list[tuple[str, str]] = []
    for node in el.iter():
        name = name_of(node)
        if name == "xbrli:startdate":
            start = _qname_text(node)[:10]
        elif name in ("xbrli:enddate", "xbrli:instant"):
            end = _qname_text(node)[:10]
        elif name in ("xbrldi:explicitmember", "xbrldi:typedmember"):
            dims.append((node.get("dimension") or "", _qname_text(node)))
    return _Context(start, end, tuple(dims))


def _measure(text: str) -> str:
    prefix, sep, local = text.partition(":")
    return local if sep and prefix in ("iso4217", "xbrli") else text


def _unit(el: Any) -> str:
    numerator: list[str] = []
    denominator: list[str] = []
    plain: list[str] = []
    for node in el.iter():
        if name_of(node) != "xbrli:measure":
            continue
        measure = _measure(_qname_text(node))
        parent = name_of(node.getparent())
        (
            numerator
            if parent == "xbrli:unitnumerator"
            else denominator
            if parent == "xbrli:unitdenominator"
            else plain
        ).append(measure)
    if numerator or denominator:
        return "*".join(numerator) + "/" + "*".join(denominator)
    return "*".join(plain)


# ---------------------------------------------------------------------------------------------
# transforms


def _format_name(fmt: str | None) -> str:
    """`ixt:num-dot-decimal` -> `numdotdecimal` (registry versions differ in hyphens only)."""
    if not fmt:
        return ""
    return fmt.rsplit(":", 1)[-1].replace("-", "").lower()


def _decimal_string(d: Decimal) -> str:
    return "0" if d == 0 else format(d.normalize(), "f")


def number_value(printed: str, fmt: str | None, scale: int = 0, negative: bool = False) -> str:
    """A numeric fact's value: the printed text read with its format, scaled, signed."""
    name = _format_name(fmt)
    text = printed.strip()
    if name in ("fixedzero", "zerodash", "numdash", "fixedempty", "nocontent") or (
        name == "" and text in ("-", "—", "–")
    ):
        digits = "0"
    elif name in ("numwordsen", "numwordsen0", "numword", "numwords"):
        digits = str(number_words(text))
    elif name in ("numcommadecimal", "numcomma", "numdotcomma", "numspacecomma", "numcommadot0"):
        digits = re.sub(r"[^0-9,]", "", text).replace(",", ".")
    elif name in (
        "",
        "numdotdecimal",
        "numcommadot",
        "numspacedot",
        "numunitdecimal",
        "numdotdecimalin",
    ):
        digits = re.sub(r"[^0-9.]", "", text)
    else:
        raise TransformError(f"format {fmt} is not known for numbers ({printed!r})")
    if digits.count(".") > 1 or not re.search(r"[0-9]", digits):
        raise TransformError(f"{printed!r} is not a number in format {fmt or 'none'}")
    try:
        value = Decimal(digits).scaleb(scale)
    except InvalidOperation as e:
        raise TransformError(f"{printed!r} is not a number") from e
    return _decimal_string(-value if negative else value)


def number_words(text: str) -> int:
    """English number words to an int: "one", "twenty-five", "two hundred", "no" -> 0."""
    words = re.findall(r"[a-z]+", text.lower().replace("-", " "))
    if not words:
        raise TransformError(f"{text!r} holds no number words")
    if words in (["no"], ["none"]):
        return 0
    total = current = 0
    for w in words:
        if w in ("and", "a", "an"):
            current += 1 if w != "and" and current == 0 else 0
        elif w in _SMALL:
            current += _SMALL[w]
        elif w in _TENS:
            current += _TENS[w]
        elif w == "hundred":
            current = max(current, 1) * 100
        elif w in _MAGNITUDES:
            total += max(current, 1) * _MAGNITUDES[w]
            current = 0
        else:
            raise TransformError(f"{text!r}: {w!r} is not a number word")
    return total + current


def _iso(year: int, month: int, day: int) -> str:
    if year < 100:
        year += 2000
    if not (1 <= month <= 12 and 1 <= day <= 31):
        raise TransformError(f"{year}-{month}-{day} is not a date")
    return f"{year:04d}-{month:02d}-{day:02d}"


def _month(word: str) -> int:
    m = _MONTHS.get(word.lower().rstrip("."))
    if m is None:
        raise TransformError(f"{word!r} is not a month")
    return m


def text_value(text: str, fmt: str) -> str:
    """A text fact's value read with its format (see the module docstring)."""
    name = _format_name(fmt)
    t = " ".join(text.replace(",", " , ").split())
    words = re.findall(r"[A-Za-z]+|[0-9]+", t)
    nums = [int(w) for w in words if w.isdigit()]
    alpha = [w for w in words if not w.isdigit()]
    if name in ("fixedtrue", "booleantrue"):
        return "true"
    if name in ("fixedfalse", "booleanfalse"):
        return "false"
    if name in ("fixedempty", "nocontent"):
        return ""
    if name == "boolballotbox":
        if "☒" in text or "☑" in text or "þ" in text:
            return "true"
        if "☐" in text or "¨" in text or text.strip() == "o":
            return "false"
        raise TransformError(f"{text!r} is no ballot box")
    if name in ("numwordsen",):
        return str(number_words(text))
    if name.startswith("dur"):
        return _duration(name, text, nums)
    if not name.startswith("date"):
        raise TransformError(f"format {fmt} is not known")
    try:
        if name in ("datemonthnamedayyearen", "datelongus", "dateshortus", "datemonthnamedayyear"):
            return _iso(nums[-1], _month(alpha[0]), nums[0])
        if name in ("datedaymonthnameyearen", "datelonguk", "dateshortuk", "datedaymonthyearen"):
            return _iso(nums[-1], _month(alpha[0]), nums[0])
        if name in ("datemonthdayyear", "dateslashus", "datedotus", "datemonthdayyearen"):
            return _iso(nums[2], nums[0], nums[1])
        if name in ("datedaymonthyear", "dateslasheu", "datedoteu"):
            return _iso(nums[2], nums[1], nums[0])
        if name in ("dateyearmonthday", "dateyearmonthdayen"):
            return _iso(nums[0], nums[1], nums[2])
        if name in ("datemonthday", "datemonthdayen"):
            return f"--{nums[0]:02d}-{nums[1]:02d}"
        if name in ("datedaymonth",):
            return f"--{nums[1]:02d}-{nums[0]:02d}"
        if name in ("datemonthnamedayen", "datemonthnameday"):
            return f"--{_month(alpha[0]):02d}-{nums[0]:02d}"
        if name in ("datedaymonthnameen", "datedaymonthname"):
            return f"--{_month(alpha[0]):02d}-{nums[0]:02d}"
        if name in ("datemonthnameyearen", "datemonthyearen", "datemonthnameyear"):
            year = nums[-1] + (2000 if nums[-1] < 100 else 0)
            return f"{year:04d}-{_month(alpha[0]):02d}"
        if name in ("datemonthyear",):
            year = nums[1] + (2000 if nums[1] < 100 else 0)
            return f"{year:04d}-{nums[0]:02d}"
    except IndexError as e:
        raise TransformError(f"{text!r} does not read as {fmt}") from e
    raise TransformError(f"format {fmt} is not known")


def _duration(name: str, text: str, nums: list[int]) -> str:
    fixed = {"duryear": "Y", "durmonth": "M", "durweek": "W", "durday": "D"}
    if name in fixed:
        figure = re.sub(r"[^0-9.]", "", text)
        if not figure:
            raise TransformError(f"{text!r} is no number of {fixed[name]}")
        return f"P{_decimal_string(Decimal(figure))}{fixed[name]}"
    if name == "durhour":
        figure = re.sub(r"[^0-9.]", "", text)
        return f"PT{_decimal_string(Decimal(figure or '0'))}H"
    if name in ("durwordsen", "durwordsen0"):
        # "one year and six months", "ten years", "30 days"
        parts: dict[str, int] = {}
        words: list[str] = []
        for token in re.findall(r"[a-z]+|[0-9]+", text.lower().replace("-", " ")):
            unit = token.rstrip("s")
            if unit in _DURATION_UNITS:
                amount = (
                    int(words[0])
                    if words and words[0].isdigit()
                    else number_words(" ".join(words) or "one")
                )
                parts[_DURATION_UNITS[unit]] = amount
                words = []
            elif token not in ("and",):
                words.append(token)
        if not parts:
            raise TransformError(f"{text!r} is no duration")
        order = "YMWD"
        return "P" + "".join(f"{parts[u]}{u}" for u in order if u in parts)
    raise TransformError(f"duration format {name} is not known")
