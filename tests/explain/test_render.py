"""Rendering evidence: escaped HTML for the UI, coloured runs and rich text for Excel."""

from __future__ import annotations

from app.records import Explanation, WordWeight
from explain.render import (
    LABEL_RGB,
    colour_runs,
    evidence_text,
    highlight_html,
    method_line,
    word_colours,
)


def explanation(
    words: tuple[str, ...], values: tuple[float, ...], label: str = "negative"
) -> Explanation:
    return Explanation(
        sentence_index=0,
        label=label,
        words=words,
        values=values,
        base_value=0.2,  # type: ignore[arg-type]
        output_value=0.2 + sum(values),
        additivity_error=0.0,
        top_for=(WordWeight(word="loss", weight=0.5),),
        top_against=(WordWeight(word="record", weight=-0.1),),
    )


TEXT = "Net  loss <widened> at a record."
EXP = explanation(
    ("Net", "loss", "<widened>", "at", "a", "record."), (0.02, 0.5, 0.2, 0.0, 0.001, -0.1)
)


def test_runs_cover_the_text_exactly_and_colour_only_evidence():
    runs = colour_runs(TEXT, EXP)
    assert "".join(piece for piece, _ in runs) == TEXT  # double space kept
    coloured = {piece: colour for piece, colour in runs if colour}
    assert set(coloured) == {"loss", "<widened>", "record."}
    red = "{:02X}{:02X}{:02X}".format(*LABEL_RGB["negative"])
    assert coloured["loss"] == red  # the strongest word takes the full label colour
    assert coloured["record."] != red  # pushing against the label: another colour


def test_strength_is_relative_to_the_strongest_word():
    colours = word_colours(EXP)
    assert colours[1] is not None and colours[1][1] == 1.0
    assert colours[0] is None and colours[3] is None  # too weak to colour


def test_html_escapes_the_sentence():
    out = highlight_html(TEXT, EXP)
    assert "<widened>" not in out and "&lt;widened&gt;" in out
    assert 'title="+0.500 for negative"' in out
    nasty = explanation(('"><script>alert(1)</script>',), (0.3,))
    html_out = highlight_html(None, nasty)
    assert "<script>" not in html_out


def test_changed_text_falls_back_to_the_words():
    runs = colour_runs("Another sentence entirely", EXP)
    assert "".join(p for p, _ in runs) == "Net loss <widened> at a record."


def test_evidence_text_lists_for_and_against():
    assert evidence_text(EXP) == "for negative: loss (+0.50); against: record (-0.10)"


def test_workpaper_screen_and_highlight_show_the_same_evidence_words():
    from app.ui.tables import evidence_line
    from app.workpaper import evidence_text as cell_text

    # 0.004 is under MIN_WEIGHT, 0.04 under a tenth of the strongest word: neither is evidence
    expl = explanation(
        ("Revenue", "fell", "sharply", "despite", "growth"), (0.004, 0.6, 0.2, 0.04, -0.3)
    ).model_copy(
        update={
            "top_for": (
                WordWeight(word="fell", weight=0.6),
                WordWeight(word="sharply", weight=0.2),
                WordWeight(word="despite", weight=0.04),
                WordWeight(word="Revenue", weight=0.004),
            ),
            "top_against": (WordWeight(word="growth", weight=-0.3),),
        }
    )
    plain = "for negative: fell (+0.60), sharply (+0.20); against: growth (-0.30)"
    assert evidence_text(expl) == plain
    assert evidence_line(expl) == plain
    assert str(cell_text(expl)) == plain
    coloured = {piece for piece, colour in colour_runs(None, expl) if colour}
    assert coloured == {"fell", "sharply", "growth"}


def test_method_line_says_how_the_evidence_was_made():
    def with_(**update: object) -> Explanation:
        return EXP.model_copy(update=update)

    assert method_line(with_(settings={})) == "sampled Owen values"
    per_word = with_(settings={"evals_per_word": 3.0, "max_evals": None, "evals": 20})
    assert method_line(per_word) == "sampled Owen values, 3 evaluations per word"
    fixed = with_(settings={"evals_per_word": None, "max_evals": 2000})
    assert method_line(fixed) == "sampled Owen values, 2,000 evaluations per sentence"
    noted = per_word.model_copy(update={"note": "no explainer shipped"})
    assert method_line(noted) == "sampled Owen values, 3 evaluations per word; no explainer shipped"
    assert method_line(noted, note=False) == "sampled Owen values, 3 evaluations per word"
    amortized = with_(
        method="amortized",
        fidelity={"spearman": 0.5, "top1": 0.75, "top3": 0.6, "blessed": False},
    )
    assert method_line(amortized) == (
        "amortized explainer (Spearman 0.50, top-1 0.75, top-3 0.60, not blessed)"
    )
    bare = with_(method="amortized", fidelity={"blessed": True})
    assert method_line(bare) == "amortized explainer (fidelity not measured)"
