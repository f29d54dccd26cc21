"""The review screen's tables: labels in force, review status, filters, summaries, file names."""

from __future__ import annotations

from datetime import UTC, datetime

from app.records import (
    Document,
    DocumentResult,
    Explanation,
    ReviewAction,
    Score,
    Sentence,
    Stamp,
    WordWeight,
)
from app.ui.pages_review import conflict_message
from app.ui.tables import (
    NO_SECTION,
    document_tone,
    download_name,
    evidence_line,
    filter_rows,
    label_summary,
    latest_action,
    most_negative,
    not_counted_line,
    review_log,
    section_summary,
    sentence_frame,
    sentence_rows,
    signoffs,
)

DOC = "a" * 64
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STAMP = Stamp(
    model_name="sesame-sentiment",
    model_version="3",
    model_digest="53aa5117" + "0" * 56,
    code_version="0.1.0",
    run_id="run-1",
    created_at=NOW,
)


def _sentence(i: int, text: str, section: str | None, page: int = 1, kind: str = "sentence"):
    return Sentence(
        doc_id=DOC,
        index=i,
        page_no=page,
        start=0,
        end=len(text),
        text=text,
        section=section,
        kind=kind,
    )


def _score(i: int, label: str, p_neg: float):
    rest = (1 - p_neg) / 2
    probs = {"positive": rest, "negative": p_neg, "neutral": rest}
    if label != "negative":
        probs = {"positive": 0.0, "negative": p_neg, "neutral": 0.0} | {label: 1 - p_neg}
    return Score(sentence_index=i, label=label, probabilities=probs, confidence=max(probs.values()))


def _result() -> DocumentResult:
    sentences = (
        _sentence(0, "Risk factors", "Risk factors", kind="heading"),
        _sentence(1, "Revenue fell sharply.", "Risk factors"),
        _sentence(2, "Revenue grew to a record.", "Outlook", page=2),
        _sentence(3, "The office is in Leeds.", None, page=2),
    )
    scores = (
        _score(0, "negative", 0.9),
        _score(1, "negative", 0.8),
        _score(2, "positive", 0.05),
        _score(3, "neutral", 0.2),
    )
    return DocumentResult(
        source="report.pdf",
        document=Document(doc_id=DOC, file_name="report.pdf", size_bytes=1, n_pages=2),
        status="ok",
        sentences=sentences,
        scores=scores,
        stamp=STAMP,
    )


def _action(
    id_: int,
    action: str,
    sentence: int | None,
    label=None,
    previous=None,
    comment=None,
    reviewer="Alice (alice)",
) -> ReviewAction:
    return ReviewAction(
        id=id_,
        result_id=1,
        doc_id=DOC,
        sentence_index=sentence,
        action=action,
        reviewer=reviewer,
        created_at=NOW,
        label=label,
        previous_label=previous,
        comment=comment,
        model_version="3",
        model_digest=STAMP.model_digest,
    )


REVIEWS = [
    _action(1, "override", 1, "neutral", "negative", "Boilerplate."),
    _action(2, "agree", 2, "positive", "positive"),
    _action(3, "comment", 3, comment="Check the lease note."),
    _action(4, "override", 1, "negative", "neutral", "No: it is negative.", "Bob (bob)"),
    _action(5, "signoff_preparer", None),
]


def _rows():
    result = _result()
    scores = {s.sentence_index: s for s in result.scores}
    return sentence_rows([(s, scores.get(s.index)) for s in result.sentences], REVIEWS)


def test_label_in_force_and_review_status_follow_the_latest_decision():
    rows = {r.index: r for r in _rows()}
    # Bob reverted the other reviewer's override: the label is Bob's, the sentence disputed.
    assert (rows[1].model_label, rows[1].label, rows[1].review, rows[1].reviewer) == (
        "negative",
        "negative",
        "disputed",
        "Bob (bob)",
    )
    assert (rows[2].label, rows[2].review) == ("positive", "agreed")
    assert (rows[3].label, rows[3].review) == ("neutral", "commented")
    assert (rows[0].label, rows[0].review) == ("negative", "not reviewed")
    assert rows[3].section == NO_SECTION


def test_filters_combine_on_label_in_force_section_page_confidence_and_status():
    rows = _rows()
    assert [r.index for r in filter_rows(rows, label="negative")] == [0, 1]
    assert [r.index for r in filter_rows(rows, section="Risk factors", review="disputed")] == [1]
    assert filter_rows(rows, review="overridden") == []
    assert [r.index for r in filter_rows(rows, page=2)] == [2, 3]
    assert [r.index for r in filter_rows(rows, min_confidence=0.85)] == [0, 2]
    assert filter_rows(rows, label="positive", page=1) == []


def test_summaries_use_the_workpaper_definitions():
    result = _result()
    sections = section_summary(result)
    assert list(sections["section"]) == ["Risk factors", "Outlook", NO_SECTION]
    risk = sections.iloc[0]
    # the section's heading is shown but not counted: one sentence, negative
    assert (risk["sentences"], risk["negative share"], risk["tone index"]) == (1, 1.0, -1.0)
    negative = most_negative(result)
    # only sentences labelled negative, the heading left out
    assert list(negative["#"]) == [1]
    assert set(negative["label"]) == {"negative"}


def test_table_rows_and_furniture_are_listed_but_kept_out_of_the_tone():
    base = _result()
    extra = (
        _sentence(4, "REVENUE Net sales Membership fees Total revenue", "Outlook", 2, "table_row"),
        _sentence(5, "Page |2", "Outlook", 2, "furniture"),
    )
    result = base.model_copy(
        update={
            "sentences": base.sentences + extra,
            "scores": base.scores + (_score(4, "negative", 0.95), _score(5, "negative", 0.7)),
        }
    )
    # the table row and the page number are scored negative, yet count nowhere
    labels = label_summary(result)
    assert dict(zip(labels["label"], labels["sentences"], strict=True)) == {
        "positive": 1,
        "negative": 1,
        "neutral": 1,
    }
    assert document_tone(result) == 0.0
    assert list(most_negative(result)["#"]) == [1]
    outlook = section_summary(result).iloc[1]
    assert (outlook["section"], outlook["sentences"], outlook["tone index"]) == ("Outlook", 1, 1.0)
    assert not_counted_line(result) == (
        "Counted in the tone: 3 sentences and list items; shown but not counted: "
        "1 heading, 1 table row, 1 line of page furniture."
    )
    # still in the sentence list, with their kind
    frame = sentence_frame(sentence_rows([(s, None) for s in result.sentences], []))
    assert list(frame["kind"])[3:] == ["sentence", "table row", "furniture"]


def test_no_negative_sentence_gives_an_empty_most_negative_list():
    base = _result()
    scores = tuple(
        _score(s.sentence_index, "neutral", 0.3) if s.label == "negative" else s
        for s in base.scores
    )
    assert most_negative(base.model_copy(update={"scores": scores})).empty


def test_review_log_and_signoffs_and_the_version_acted_on():
    log = review_log(REVIEWS, {s.index: s for s in _result().sentences})
    assert list(log["action"]) == [
        "overrode",
        "agreed",
        "commented",
        "overrode",
        "signed off as preparer",
    ]
    assert log.iloc[3]["previous label"] == "neutral"
    assert log.iloc[4]["sentence"] == ""
    assert signoffs(REVIEWS)["signoff_preparer"].id == 5
    assert signoffs(REVIEWS)["signoff_reviewer"] is None
    assert latest_action(REVIEWS, 1).id == 4
    assert latest_action(REVIEWS, 0) is None
    assert latest_action(REVIEWS, whole_result=True).id == 5


def test_download_names_carry_the_model_version_and_never_a_path():
    name = download_name("../../Q3 report (final).PDF", DOC, STAMP, "xlsx")
    assert name == f"Q3_report_final_{DOC[:8]}_sesame-sentiment-v3.xlsx"
    unregistered = STAMP.model_copy(update={"model_version": None})
    assert (
        download_name("C:\\docs\\r.pdf", None, unregistered, "json")
        == "r_sesame-sentiment-unregistered-53aa5117.json"
    )


def test_evidence_line_leaves_out_words_the_highlight_leaves_plain():
    expl = Explanation(
        sentence_index=1,
        label="negative",
        words=("Revenue", "fell", "sharply"),
        values=(0.01, 0.5, 0.2),
        base_value=0.3,
        output_value=0.8,
        additivity_error=0.0,
        top_for=(
            WordWeight(word="fell", weight=0.5),
            WordWeight(word="sharply", weight=0.2),
            WordWeight(word="Revenue", weight=0.01),
        ),
    )
    assert evidence_line(expl) == "for negative: fell (+0.50), sharply (+0.20)"


def test_conflict_message_names_the_other_reviewer_and_their_decision():
    text = conflict_message(REVIEWS[3])
    assert text.startswith(
        "Not saved: Bob (bob) overrode the label to negative on this "
        "sentence at 2026-03-01 12:00:00 UTC"
    )
    assert '"No: it is negative."' in text
