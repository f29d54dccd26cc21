"""Evidence as the auditor sees it: one rule for which words show, one palette, three formats.

The rule (`shown`): a word is evidence when its attribution is at least `MIN_SHARE` of the
sentence's strongest word and at least `MIN_WEIGHT` (smaller ones print as +0.00). The palette:
words pushing towards the sentence's label take the label's colour (negative red, positive
green, neutral grey); words pushing against it take the colour of where they push (against
positive: red, against negative: green, against neutral: blue). The workpaper, the review
screen and the JSON all go through here, so the same sentence shows the same words everywhere.

- `highlight_html(text, explanation)`: the sentence as escaped HTML for the review screen, each
  evidence word on a tinted background (weaker words lighter) with its weight as a tooltip;
  `colour_runs(text, explanation)` gives the same colouring as (text, "RRGGBB" or None) runs.
- `evidence_rich_text(explanation)`: the top words as an openpyxl CellRichText for a cell.
- `evidence_text(explanation)`: the top words as plain text ("for negative: loss (+0.41)").
- `method_line(explanation)`: how the values were made, in one line ("sampled Owen values,
  3 evaluations per word" or "amortized explainer (Spearman 0.84, top-1 0.86, ...)").
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence

from openpyxl.cell.rich_text import CellRichText, TextBlock
from openpyxl.cell.text import InlineFont

from app.records import Explanation, WordWeight
from explain.words import split_words

LABEL_RGB: dict[str, tuple[int, int, int]] = {
    "negative": (192, 0, 0),
    "positive": (30, 123, 52),
    "neutral": (107, 107, 107),
}
AGAINST_NEUTRAL_RGB = (31, 78, 158)
"""Words pushing away from neutral: blue (neither towards positive nor negative)."""
MIN_SHARE = 0.1
"""Words weaker than this share of the sentence's strongest word are no evidence."""
MIN_WEIGHT = 0.005
"""Attributions smaller than this print as +0.00: they are no evidence either."""
TOP_K = 5
"""Words listed for and against a label in the evidence text."""

Run = tuple[str, str | None]
FidelityValue = str | int | float | bool | None


def hex_rgb(rgb: tuple[int, int, int]) -> str:
    """ "RRGGBB" of an (r, g, b) colour."""
    return "{:02X}{:02X}{:02X}".format(*rgb)


def direction_rgb(label: str, towards: bool) -> tuple[int, int, int]:
    """The colour of a word pushing towards (or against) `label`."""
    if towards:
        return LABEL_RGB.get(label, LABEL_RGB["neutral"])
    return {
        "positive": LABEL_RGB["negative"],
        "negative": LABEL_RGB["positive"],
    }.get(label, AGAINST_NEUTRAL_RGB)


def threshold(explanation: Explanation) -> float:
    """The smallest absolute attribution that counts as evidence in this sentence."""
    top = max((abs(v) for v in explanation.values), default=0.0)
    return max(MIN_WEIGHT, MIN_SHARE * top)


def shown(explanation: Explanation, weight: float) -> bool:
    """Whether a word of this weight is evidence in this sentence (the one rule)."""
    return abs(weight) >= threshold(explanation)


def evidence_words(
    explanation: Explanation, k: int = TOP_K
) -> tuple[list[WordWeight], list[WordWeight]]:
    """The strongest evidence words for and against the label, at most `k` each."""
    cut = threshold(explanation)
    if explanation.top_for or explanation.top_against:
        towards = [w for w in explanation.top_for if abs(w.weight) >= cut]
        against = [w for w in explanation.top_against if abs(w.weight) >= cut]
    else:  # older or minimal explanations carry only the per-word values
        pairs = [
            WordWeight(word=w, weight=v)
            for w, v in zip(explanation.words, explanation.values, strict=False)
            if w.strip() and abs(v) >= cut
        ]
        towards = sorted((p for p in pairs if p.weight > 0), key=lambda p: -p.weight)
        against = sorted((p for p in pairs if p.weight < 0), key=lambda p: p.weight)
    return towards[:k], against[:k]


_FIGURES = (("spearman", "Spearman"), ("top1", "top-1"), ("top3", "top-3"))


def fidelity_figures(fidelity: Mapping[str, FidelityValue]) -> str:
    """ "Spearman 0.84, top-1 0.86, top-3 0.78" (the figures present)."""
    return ", ".join(
        f"{name} {float(v):.2f}"
        for key, name in _FIGURES
        if isinstance(v := fidelity.get(key), int | float) and not isinstance(v, bool)
    )


def method_phrase(
    method: str,
    fidelity: Mapping[str, FidelityValue],
    settings: Mapping[str, FidelityValue] | None = None,
) -> str:
    """How evidence was made, e.g. "amortized explainer (Spearman 0.84, top-1 0.86, top-3 0.78
    against a 2,000-evaluation reference on 200 report sentences)" or "sampled Owen values,
    3 evaluations per word".

    For amortized, `fidelity["reference"]` names the reference as a noun phrase and
    `fidelity["set"]` the measured sentences in the plural, as the training step writes them.
    """
    if method == "amortized":
        figures = fidelity_figures(fidelity)
        if not figures:
            return "amortized explainer (fidelity not measured)"
        where = ""
        reference, kind, n = (
            fidelity.get("reference"),
            fidelity.get("set"),
            fidelity.get("n_sentences"),
        )
        if isinstance(reference, str) and reference:
            where += f" against {reference}"
        if isinstance(n, int) and not isinstance(n, bool):
            where += f" on {n:,} {kind if isinstance(kind, str) and kind else 'sentences'}"
        elif isinstance(kind, str) and kind:
            where += f" on {kind}"
        blessed = "" if fidelity.get("blessed") else ", not blessed"
        return f"amortized explainer ({figures}{where}{blessed})"
    settings = settings or {}
    per_word, per_sentence = settings.get("evals_per_word"), settings.get("max_evals")
    if isinstance(per_sentence, int) and not isinstance(per_sentence, bool) and per_sentence:
        return f"sampled Owen values, {per_sentence:,} evaluations per sentence"
    if isinstance(per_word, int | float) and not isinstance(per_word, bool):
        return f"sampled Owen values, {float(per_word):g} evaluations per word"
    evals = settings.get("evals")
    if isinstance(evals, int) and not isinstance(evals, bool) and evals > 0:
        return f"sampled Owen values, {evals:,} model evaluations"
    return "sampled Owen values"


def method_line(explanation: Explanation, *, note: bool = True) -> str:
    """How this evidence was made, in one line (workpaper, review screen), with why this method
    when it is not the one asked for (`note`)."""
    line = method_phrase(explanation.method, explanation.fidelity, explanation.settings)
    if note and explanation.note:
        line += f"; {explanation.note}"
    return line


def evidence_text(explanation: Explanation, *, k: int = TOP_K) -> str:
    """Top evidence as plain text: "for negative: loss (+0.41), widened (+0.12); against: ..."."""
    towards, against = evidence_words(explanation, k)

    def fmt(ws: Sequence[WordWeight]) -> str:
        return ", ".join(f"{w.word.strip()} ({w.weight:+.2f})" for w in ws)

    parts = []
    if towards:
        parts.append(f"for {explanation.label}: {fmt(towards)}")
    if against:
        parts.append(f"against: {fmt(against)}")
    return "; ".join(parts)


def evidence_rich_text(
    explanation: Explanation,
    *,
    k: int = TOP_K,
    font: str = "Calibri",
    size: float = 11,
    clean: Callable[[str], str] = str,
) -> CellRichText | str:
    """Top evidence as a cell's rich text: the words bold in their direction's colour.

    `clean` makes a word safe for the cell (the workpaper's XML and length rules).
    """
    towards, against = evidence_words(explanation, k)
    if not towards and not against:
        return ""
    parts: list[str | TextBlock] = []

    def add(prefix: str, words: list[WordWeight], rgb: tuple[int, int, int]) -> None:
        colour = hex_rgb(rgb)
        bold = InlineFont(rFont=font, sz=size, color=colour, b=True)
        plain = InlineFont(rFont=font, sz=size, color=colour)
        parts.append(prefix)
        for i, ww in enumerate(words):
            if i:
                parts.append(", ")
            parts.append(TextBlock(bold, clean(ww.word.strip())))
            parts.append(TextBlock(plain, f" ({ww.weight:+.2f})"))

    label = explanation.label
    if towards:
        add(f"for {label}: ", towards, direction_rgb(label, True))
    if against:
        add("; against: " if towards else "against: ", against, direction_rgb(label, False))
    return CellRichText(parts)


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
        if top <= 0 or not shown(explanation, v):
            colours.append(None)
            continue
        share = abs(v) / top
        rgb = direction_rgb(explanation.label, v > 0)
        # weak words fade towards a light tint of the colour, strong ones take it in full
        light = 0.55 * (1 - share)
        colours.append((hex_rgb(tuple(round(c + (255 - c) * light) for c in rgb)), share))  # type: ignore[arg-type]
    return colours


def colour_runs(text: str | None, explanation: Explanation) -> list[Run]:
    """The sentence as (text, colour) runs; colour is "RRGGBB" or None for plain text."""
    colours = word_colours(explanation)
    runs: list[Run] = []
    for piece, i in _segments(text, explanation.words):
        found = colours[i] if i is not None else None
        colour = found[0] if found is not None else None
        if runs and runs[-1][1] is None and colour is None:
            runs[-1] = (runs[-1][0] + piece, None)  # merge plain text into one run
        else:
            runs.append((piece, colour))
    return runs


def highlight_html(text: str | None, explanation: Explanation) -> str:
    """The sentence as escaped HTML, evidence words on a tinted background with a tooltip."""
    colours = word_colours(explanation)
    out: list[str] = []
    for piece, i in _segments(text, explanation.words):
        safe = html.escape(piece)
        found = colours[i] if i is not None else None
        if i is None or found is None:
            out.append(safe)
            continue
        colour, share = found
        rgb = tuple(int(colour[k : k + 2], 16) for k in (0, 2, 4))
        alpha = round(0.15 + 0.45 * share, 2)
        side = "for" if explanation.values[i] > 0 else "against"
        tip = html.escape(f"{explanation.values[i]:+.3f} {side} {explanation.label}", quote=True)
        out.append(
            f'<span style="background-color: rgba({rgb[0]}, {rgb[1]}, {rgb[2]}, {alpha}); '
            f'border-radius: 3px; padding: 0 2px" title="{tip}">{safe}</span>'
        )
    return f'<span class="sesame-evidence">{"".join(out)}</span>'
