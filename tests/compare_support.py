"""Two years of one report built by hand, for the comparison tests (`app.compare`)."""

from __future__ import annotations

from datetime import UTC, datetime

from app.records import Document, DocumentResult, Label, Score, Sentence, Stamp

DIGEST = "a" * 64
T0 = datetime(2024, 3, 1, tzinfo=UTC)

Item = tuple[str, Label] | tuple[str, Label, float]


def make_result(
    doc_id: str,
    sections: list[tuple[str, str | None, list[Item]]],
    *,
    digest: str = DIGEST,
    client: str | None = "Acme Holdings",
    engagement: str | None = None,
    file_name: str | None = None,
    created_at: datetime = T0,
) -> DocumentResult:
    """A result built by hand: (heading, section type, [(text, label[, P(label)])]) sections,
    one page per section; headings are scored neutral."""
    sentences: list[Sentence] = []
    scores: list[Score] = []

    def add(text: str, kind: str, heading: str, stype: str | None, label: Label, p: float) -> None:
        i = len(sentences)
        sentences.append(
            Sentence(
                doc_id=doc_id,
                index=i,
                page_no=page,
                start=0,
                end=len(text),
                text=text,
                kind=kind,  # type: ignore[arg-type]
                section=heading,
                section_type=stype,
            )
        )
        rest = (1 - p) / 2
        probs = {lab: (p if lab == label else rest) for lab in ("positive", "negative", "neutral")}
        scores.append(Score(sentence_index=i, label=label, probabilities=probs, confidence=p))  # type: ignore[arg-type]

    for page, (heading, stype, items) in enumerate(sections, start=1):  # noqa: B007
        add(heading, "heading", heading, stype, "neutral", 0.9)
        for item in items:
            text, label = item[0], item[1]
            add(text, "sentence", heading, stype, label, item[2] if len(item) > 2 else 0.9)  # type: ignore[misc]
    name = file_name or f"{doc_id[:6]}.pdf"
    return DocumentResult(
        source=name,
        document=Document(doc_id=doc_id, file_name=name, size_bytes=1000, n_pages=len(sections)),
        status="ok",
        sentences=tuple(sentences),
        scores=tuple(scores),
        stamp=Stamp(
            model_name="test-model",
            model_version="1",
            model_digest=digest,
            code_version="0",
            run_id="run",
            created_at=created_at,
        ),
        settings={"scoring": {"max_length": 128, "label_map": None, "quantize": "none"}},
        client=client,
        engagement=engagement,
    )


PRIOR_ID, CURRENT_ID = "1" * 64, "2" * 64

# Last year and this year of one report: every change below is known.
UNCHANGED = "The group designs and sells industrial pumps in Europe and North America."
EDITED_BEFORE = "We depend on a small number of suppliers for the castings used in our pumps."
EDITED_AFTER = (
    "We depend on a small number of suppliers for the castings and seals used in our pumps."
)
REMOVED = "The integration of the Valmont acquisition may take longer than planned."
NEW = "A cyber attack on our plant in Lyon halted production for three weeks."
NUMBERS_BEFORE = "Revenue rose 8% to $4.5 billion in 2022, as of December 31, 2022."
NUMBERS_AFTER = "Revenue rose 12% to $4.1 billion in 2023, as of December 31, 2023."


def pair(digest: str = DIGEST) -> tuple[DocumentResult, DocumentResult]:
    """Last year and this year: one sentence each unchanged, edited, new, removed, and with new
    figures (FY2022, FY2023)."""
    prior = make_result(
        PRIOR_ID,
        [
            ("Our business", "business", [(UNCHANGED, "neutral"), (NUMBERS_BEFORE, "positive")]),
            (
                "Item 1A. Risk Factors",
                "risk_factors",
                [(EDITED_BEFORE, "neutral"), (REMOVED, "negative", 0.8)],
            ),
        ],
        engagement="FY2022",
        digest=digest,
        file_name="acme_2022.pdf",
    )
    current = make_result(
        CURRENT_ID,
        [
            ("Our business", "business", [(UNCHANGED, "neutral"), (NUMBERS_AFTER, "positive")]),
            (
                "Item 1A. Risk Factors",
                "risk_factors",
                [(EDITED_AFTER, "negative", 0.7), (NEW, "negative", 0.95)],
            ),
        ],
        engagement="FY2023",
        digest=digest,
        file_name="acme_2023.pdf",
    )
    return prior, current
