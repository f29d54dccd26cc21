"""Evidence as the auditor sees it: coloured words in the review UI and in workpaper cells.

Words that push towards the sentence's label take the label's colour (negative red, positive
green, neutral grey); words that push against it are blue. Strength is relative to the
sentence's strongest word, and words too weak to matter stay plain.

- `highlight_html(text, explanation)`: escaped HTML for Streamlit (`st.markdown(...,
  unsafe_allow_html=True)` or `st.html`), a tooltip on each coloured word with its weight.
- `colour_runs(text, explanation)`: [(text, "RRGGBB" or None)] runs covering the sentence,
  for any rich-text writer; `excel_rich_text()` turns them into an openpyxl CellRichText.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from app.records import Explanation
from explain.words import split_words

LABEL_RGB: dict[str, tuple[int, int, int]] = {
    "negative": (192, 0, 0),
    "positive": (0, 128, 64),
    "neutral": (96, 96, 96),
}
AGAINST_RGB = (31, 86, 200)
MIN_SHARE = 0.1
"""Words weaker than this share of the sentence's strongest word are not coloured."""

Run = tuple[str, str | None]


def _segments(text: str | None, words: Sequence[str]) -> list[tuple[str, int | None]]:
    """The sentence as (piece, word index or None for the gaps), following `text` if given."""
    spans = split_words(text) if text is not None else []
    if text is not None and [text[a:b] for a, b in spans] == list(words):
        out: list[tuple[str, int | None]] = []
        pos = 0
        for i, (a, b) in enumerate(spans):
            if a > pos:
                out.append((text[pos:a], None))
            out.append((text[a:b], i))
            pos = b
        if pos < len(text):
            out.append((text[pos:], None))
        return out
    # text missing or changed since it was explained: the words alone, single-spaced
    out = []
    for i, w in enumerate(words):
        if i:
            out.append((" ", None))
        out.append((w, i))
    return out


def word_colours(explanation: Explanation) -> list[tuple[str, float] | None]:
    """Per word: (hex colour "RRGGBB", strength 0..1), or None for a word left plain."""
    values = explanation.values
    top = max((abs(v) for v in values), default=0.0)
    colours: list[tuple[str, float] | None] = []
    for v in values:
        share = abs(v) / top if top > 0 else 0.0
        if share < MIN_SHARE:
            colours.append(None)
            continue
        rgb = LABEL_RGB.get(explanation.label, LABEL_RGB["neutral"]) if v > 0 else AGAINST_RGB
        # weak words fade towards a light tint of the colour, strong ones take it in full
        light = 0.55 * (1 - share)
        mixed = tuple(round(c + (255 - c) * light) for c in rgb)
        colours.append(("{:02X}{:02X}{:02X}".format(*mixed), share))
    return colours


def colour_runs(text: str | None, explanation: Explanation) -> list[Run]:
    """The sentence as (text, colour) runs; colour is "RRGGBB" or None for plain text."""
    colours = word_colours(explanation)
    runs: list[Run] = []
    for piece, i in _segments(text, explanation.words):
        colour = colours[i][0] if i is not None and colours[i] is not None else None  # type: ignore[index]
        if runs and runs[-1][1] is None and colour is None:
            runs[-1] = (runs[-1][0] + piece, None)  # merge plain text into one run
        else:
            runs.append((piece, colour))
    return runs


def excel_rich_text(text: str | None, explanation: Explanation) -> Any:
    """An openpyxl CellRichText of the sentence, evidence words coloured and bold."""
    from openpyxl.cell.rich_text import CellRichText, TextBlock
    from openpyxl.cell.text import InlineFont

    parts: list[Any] = []
    for piece, colour in colour_runs(text, explanation):
        if colour is None:
            parts.append(piece)
        else:
            parts.append(TextBlock(InlineFont(color=colour, b=True), piece))
    return CellRichText(*parts)


def highlight_html(text: str | None, explanation: Explanation) -> str:
    """The sentence as escaped HTML, evidence words on a tinted background with a tooltip."""
    colours = word_colours(explanation)
    out: list[str] = []
    for piece, i in _segments(text, explanation.words):
        safe = html.escape(piece)
        if i is None or colours[i] is None:
            out.append(safe)
            continue
        colour, share = colours[i]  # type: ignore[misc]
        rgb = tuple(int(colour[k : k + 2], 16) for k in (0, 2, 4))
        alpha = round(0.15 + 0.45 * share, 2)
        side = "for" if explanation.values[i] > 0 else "against"
        tip = html.escape(f"{explanation.values[i]:+.3f} {side} {explanation.label}", quote=True)
        out.append(
            f'<span style="background-color: rgba({rgb[0]}, {rgb[1]}, {rgb[2]}, {alpha}); '
            f'border-radius: 3px; padding: 0 2px" title="{tip}">{safe}</span>'
        )
    return f'<span class="sesame-evidence">{"".join(out)}</span>'


def evidence_text(explanation: Explanation, *, top_k: int | None = None) -> str:
    """Top evidence as plain text: "for negative: loss (+0.41), widened (+0.12); against: ..."."""

    def fmt(ws: Sequence[Any]) -> str:
        return ", ".join(f"{w.word} ({w.weight:+.2f})" for w in ws[:top_k])

    parts = []
    if explanation.top_for:
        parts.append(f"for {explanation.label}: {fmt(explanation.top_for)}")
    if explanation.top_against:
        parts.append(f"against: {fmt(explanation.top_against)}")
    return "; ".join(parts)
