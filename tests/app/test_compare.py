"""This year against last year (`app.compare`): known changes give exactly their classes,
figures-only edits are unchanged with the figures shown, sections of one year are reported,
tone shifts carry intervals, unlike models are rescored, and `sesame compare` end to end.

Most tests build the two years' results by hand (each sentence's label chosen); the service
and CLI tests analyze generated reports with the tiny model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import openpyxl
import pytest
from compare_support import (
    CURRENT_ID,
    DIGEST,
    EDITED_AFTER,
    EDITED_BEFORE,
    NEW,
    NUMBERS_AFTER,
    PRIOR_ID,
    REMOVED,
    T0,
    UNCHANGED,
    make_result,
    pair,
)
from ixbrl import write_filing
from pdfs import write_sections_report

from app.compare import compare_results
from app.compare.findings import flipped, new_negatives, numbers_changed, removed_negatives
from app.compare.service import Comparer, CompareUsageError, period_key, previous_of
from app.compare.text import changed_numbers, diff_text, normal_form, word_diff
from app.compare.workpaper import COMPARISON_SHEETS, write_comparison_workpaper
from app.config import CompareOptions, load_settings
from app.errors import CompareError
from app.records import DocumentResult
from app.store import ResultStore

ROOT = Path(__file__).resolve().parents[2]


def by_text(comparison, text: str):
    found = [
        c
        for c in comparison.changes
        if (c.current is not None and c.current.text == text)
        or (c.prior is not None and c.prior.text == text)
    ]
    assert len(found) == 1, (text, found)
    return found[0]


# --- classes --------------------------------------------------------------------------------


def test_known_added_removed_edited_and_unchanged_sentences_get_exactly_those_classes():
    prior, current = pair()
    comparison = compare_results(prior, current)
    assert by_text(comparison, UNCHANGED).change == "unchanged"
    edit = by_text(comparison, EDITED_AFTER)
    assert edit.change == "edited" and edit.prior.text == EDITED_BEFORE
    assert 0.6 <= edit.similarity < 1
    assert diff_text(edit.diff) == (
        "We depend on a small number of suppliers for the castings {+and seals+} used in our pumps."
    )
    assert by_text(comparison, NEW).change == "new"
    assert by_text(comparison, REMOVED).change == "removed"
    assert by_text(comparison, NUMBERS_AFTER).change == "unchanged"
    # headings come back unchanged; every sentence of both years in exactly one class
    assert comparison.counts == {
        "unchanged": 4,
        "edited": 1,
        "new": 1,
        "removed": 1,
        "prior": 6,
        "current": 6,
    }
    old = sorted(c.prior.index for c in comparison.changes if c.prior is not None)
    new = sorted(c.current.index for c in comparison.changes if c.current is not None)
    assert old == list(range(6)) and new == list(range(6))


def test_numbers_only_edits_are_unchanged_with_the_numbers_shown():
    prior, current = pair()
    change = by_text(compare_results(prior, current), NUMBERS_AFTER)
    assert change.change == "unchanged" and change.similarity is None
    assert [(n.prior, n.current) for n in change.numbers] == [
        ("8%", "12%"),
        ("$4.5", "$4.1"),
        ("2022", "2023"),
        ("December 31, 2022", "December 31, 2023"),
    ]
    assert "[-8%-] {+12%+}" in diff_text(change.diff)


def test_normal_form_sets_aside_figures_dates_case_punctuation_and_spacing():
    a = "As of June 30, 2023 the Group held  $1,234.5 million (2022: $998 million)."
    b = "as of December 31, 2024, the group held $2,001 million (2023: $1,234.5 million)"
    assert normal_form(a) == normal_form(b)
    assert normal_form("We expect growth.") != normal_form("We expect no growth.")
    assert [(n.prior, n.current) for n in changed_numbers("in 31/12/2022", "in 31/12/2023")] == [
        ("31/12/2022", "31/12/2023")
    ]
    runs = word_diff("sales fell sharply", "sales rose")
    assert [(r.op, r.text) for r in runs] == [
        ("equal", "sales"),
        ("delete", "fell sharply"),
        ("insert", "rose"),
    ]


def test_a_repeated_sentence_pairs_one_to_one_and_the_extra_copy_is_new():
    text = "See Note 12 for further information."
    prior = make_result(PRIOR_ID, [("Leases", None, [(text, "neutral")])])
    current = make_result(CURRENT_ID, [("Leases", None, [(text, "neutral"), (text, "neutral")])])
    comparison = compare_results(prior, current)
    kinds = sorted(c.change for c in comparison.changes if c.current and c.current.text == text)
    assert kinds == ["new", "unchanged"]


def test_a_moved_paragraph_is_unchanged_and_marked_moved():
    text = "Interest rates on our revolving credit facility are variable."
    prior = make_result(PRIOR_ID, [("Liquidity", "liquidity", [(text, "neutral")])])
    current = make_result(CURRENT_ID, [("Market risk", "market_risk", [(text, "neutral")])])
    change = by_text(compare_results(prior, current), text)
    assert change.change == "unchanged" and change.moved


def test_unrelated_sentences_are_new_and_removed_not_edited():
    prior = make_result(PRIOR_ID, [("Outlook", "outlook", [(REMOVED, "negative")])])
    current = make_result(CURRENT_ID, [("Outlook", "outlook", [(NEW, "negative")])])
    comparison = compare_results(prior, current)
    assert by_text(comparison, NEW).change == "new"
    assert by_text(comparison, REMOVED).change == "removed"


def test_the_edit_threshold_decides_between_edited_and_new_plus_removed():
    prior, current = pair()
    strict = compare_results(prior, current, CompareOptions(edit_similarity=0.99))
    assert by_text(strict, EDITED_AFTER).change == "new"
    assert by_text(strict, EDITED_BEFORE).change == "removed"


# --- sections -------------------------------------------------------------------------------


def test_a_section_present_in_one_year_only_is_reported():
    prior, current = pair()
    extra = make_result(
        CURRENT_ID,
        [
            *((s.section, s.section_type, []) for s in current.sentences if s.kind == "heading"),
            (
                "Going concern",
                "going_concern",
                [
                    (
                        "Material uncertainty exists about the group's ability to continue.",
                        "negative",
                    )
                ],
            ),
        ],
    )
    # keep this year's sentences and add the going concern section after them
    sentences = list(current.sentences)
    scores = list(current.scores)
    for s, sc in zip(extra.sentences[-2:], extra.scores[-2:], strict=True):
        i = len(sentences)
        sentences.append(s.model_copy(update={"index": i, "page_no": 3}))
        scores.append(sc.model_copy(update={"sentence_index": i}))
    current = current.model_copy(update={"sentences": tuple(sentences), "scores": tuple(scores)})
    comparison = compare_results(prior, current)
    going = next(s for s in comparison.sections if s.key == "type:going_concern")
    assert going.presence == "current_only" and going.current_pages == (3, 3)
    assert going.prior.n == 0 and going.current.n == 1 and going.shift is None
    assert any("Going concern" in n and "this year only" in n for n in comparison.notes)
    assert going.new_headings == ("Going concern",)


def test_headings_of_no_known_type_align_by_their_words():
    prior = make_result(PRIOR_ID, [("Backlog and orders", None, [(UNCHANGED, "neutral")])])
    current = make_result(CURRENT_ID, [("Orders and backlog", None, [(UNCHANGED, "neutral")])])
    sections = compare_results(prior, current).sections
    assert len(sections) == 1
    assert sections[0].matched_by == "fuzzy_heading" and sections[0].presence == "both"


def test_tone_shift_beyond_its_interval_comes_first():
    calm = [
        (f"The company operates warehouse number {i} in region {chr(65 + i)}.", "neutral")
        for i in range(20)
    ]
    worse = [
        (f"Demand for product line {chr(65 + i)} collapsed and losses mounted.", "negative")
        for i in range(15)
    ]
    steady = [
        (f"Plant {chr(75 + i)} produced pumps as planned for the customers.", "positive")
        for i in range(10)
    ]
    prior = make_result(PRIOR_ID, [("Outlook", "outlook", calm), ("Business", "business", steady)])
    current = make_result(
        CURRENT_ID, [("Business", "business", steady), ("Outlook", "outlook", calm + worse)]
    )
    comparison = compare_results(prior, current)
    first, second = comparison.sections
    assert first.key == "type:outlook" and first.moved
    assert first.prior.tone == 0 and first.current.tone == pytest.approx(-15 / 35, abs=1e-3)
    assert first.shift < 0 and first.shift_high < 0 < first.current.high - first.current.low
    assert second.key == "type:business" and not second.moved and second.shift == 0
    assert comparison.whole.moved
    # the same inputs give the same intervals
    again = compare_results(prior, current)
    assert again.sections == comparison.sections


def test_headings_are_aligned_but_not_counted_in_tone():
    prior, current = pair()
    comparison = compare_results(prior, current)
    assert comparison.whole.prior.n == 4 and comparison.whole.current.n == 4


# --- findings -------------------------------------------------------------------------------


def test_findings_new_and_edited_to_negative_first_then_removed_and_flipped():
    prior, current = pair()
    comparison = compare_results(prior, current)
    assert [c.current.text for c in new_negatives(comparison)] == [NEW, EDITED_AFTER]
    assert [c.prior.text for c in removed_negatives(comparison)] == [REMOVED]
    assert [c.current.text for c in flipped(comparison)] == [EDITED_AFTER]
    assert [c.current.text for c in numbers_changed(comparison)] == [NUMBERS_AFTER]


def test_an_edit_of_a_sentence_negative_already_is_not_a_new_negative():
    prior = make_result(PRIOR_ID, [("Risks", "risk_factors", [(EDITED_BEFORE, "negative")])])
    current = make_result(CURRENT_ID, [("Risks", "risk_factors", [(EDITED_AFTER, "negative")])])
    comparison = compare_results(prior, current)
    assert new_negatives(comparison) == [] and flipped(comparison) == []


# --- like for like --------------------------------------------------------------------------


def test_the_stage_refuses_results_of_different_models():
    prior, current = pair()
    other = prior.model_copy(
        update={"stamp": prior.stamp.model_copy(update={"model_digest": "b" * 64})}
    )
    with pytest.raises(CompareError, match="Not like for like"):
        compare_results(other, current)
    quantized = prior.model_copy(
        update={"settings": {"scoring": {**prior.settings["scoring"], "quantize": "dynamic-int8"}}}
    )
    with pytest.raises(CompareError, match="quantize"):
        compare_results(quantized, current)


def test_a_failed_document_cannot_be_compared_and_says_why():
    prior, current = pair()
    empty = prior.model_copy(update={"sentences": (), "scores": (), "status": "failed"})
    with pytest.raises(CompareError, match="nothing to compare"):
        compare_results(empty, current)


# --- outputs --------------------------------------------------------------------------------


def test_workpaper_has_its_sheets_every_row_stamped_and_text_never_a_formula(tmp_path):
    prior, current = pair()
    formula = '=HYPERLINK("http://example.com","click") and a loss'
    sentences = list(current.sentences)
    scores = list(current.scores)
    i = len(sentences)
    sentences.append(sentences[-1].model_copy(update={"index": i, "text": formula}))
    scores.append(scores[-1].model_copy(update={"sentence_index": i}))
    current = current.model_copy(update={"sentences": tuple(sentences), "scores": tuple(scores)})
    comparison = compare_results(prior, current)
    path = write_comparison_workpaper(comparison, tmp_path / "cmp.xlsx")
    wb = openpyxl.load_workbook(path)
    assert tuple(wb.sheetnames) == COMPARISON_SHEETS
    for name in COMPARISON_SHEETS:
        header = [r[0] for r in wb[name].iter_rows(min_row=1, max_row=4, values_only=True)]
        assert DIGEST in header[1] and PRIOR_ID in header[3] and CURRENT_ID in header[3]
    ws = wb["New and removed"]
    rows = list(ws.iter_rows(min_row=6))
    texts = [r[7] for r in rows]
    cell = next(c for c in texts if c.value == formula)
    assert cell.data_type == "s"  # stored as text, not a formula
    for row in rows:  # the stamp on every row: model and both inputs
        values = [c.value for c in row]
        assert DIGEST in values and PRIOR_ID in values and CURRENT_ID in values
    found = [r[0].value for r in rows]
    assert found[:3] == ["new negative", "new negative", "edited to negative"]


def test_store_keeps_comparisons_and_replaces_one_of_the_same_results():
    prior, current = pair()
    with ResultStore.from_settings(load_settings()) as store:
        a, b = store.save_result(prior), store.save_result(current)
        comparison = compare_results(prior, current, prior_result_id=a, current_result_id=b)
        first = store.save_comparison(comparison)
        assert store.save_comparison(comparison) == first
        assert store.load_comparison(first) == comparison
        (listed,) = store.list_comparisons(client="Acme Holdings")
        assert listed.prior_result_id == a and listed.current_result_id == b
        assert listed.counts == comparison.counts and listed.current_engagement == "FY2023"
        assert store.list_comparisons(result_id=a) == [listed]


# --- periods and the client's previous document --------------------------------------------


def test_the_clients_previous_is_the_last_earlier_period():
    with ResultStore.from_settings(load_settings()) as store:
        ids = {}
        for n, (engagement, name, when) in enumerate(
            [
                ("FY2021", "acme_a.pdf", T0 + timedelta(days=3)),  # analyzed last, period first
                ("FY2023", "acme_c.pdf", T0),
                (None, "acme_2022_10k.pdf", T0 + timedelta(days=1)),  # year from the file name
            ]
        ):
            r = make_result(
                str(n + 3) * 64,
                [("Outlook", "outlook", [(UNCHANGED, "neutral")])],
                engagement=engagement,
                file_name=name,
                created_at=when,
            )
            ids[name] = store.save_result(r)
        store.save_result(
            make_result(
                "9" * 64,
                [("Outlook", "outlook", [(UNCHANGED, "neutral")])],
                client="Other",
                engagement="FY2022",
            )
        )
        summaries = {s.file_name: s for s in store.list_results()}
        assert previous_of(store, summaries["acme_c.pdf"]).file_name == "acme_2022_10k.pdf"
        assert previous_of(store, summaries["acme_2022_10k.pdf"]).file_name == "acme_a.pdf"
        assert previous_of(store, summaries["acme_a.pdf"]) is None
        assert period_key(summaries["acme_2022_10k.pdf"])[0] == 2022


# --- the service with the tiny model: files, stored documents, rescoring --------------------

PRIOR_SECTIONS = [
    (
        "Risk factors",
        [
            "Our results depend on a small number of large customers.",
            "The integration of the Valmont acquisition may take longer than planned.",
        ],
    ),
    ("Outlook", ["We expect revenue to grow by about 5% next year as the new plant opens."]),
]
CURRENT_SECTIONS = [
    (
        "Risk factors",
        [
            "Our results depend on a small number of large customers.",
            "Revenue decline and an impairment loss followed the default of our largest customer.",
        ],
    ),
    ("Outlook", ["We expect revenue to grow by about 2% next year as the new plant opens."]),
    ("Going concern", ["The directors expect the group to meet its obligations as they fall due."]),
]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("reports")
    prior = write_sections_report(
        folder / "acme_2022.pdf", "Acme Annual Report 2022", PRIOR_SECTIONS
    )
    current = write_sections_report(
        folder / "acme_2023.pdf", "Acme Annual Report 2023", CURRENT_SECTIONS
    )
    return prior, current


@pytest.fixture
def tiny_settings(tiny_model_dir: Path):
    return load_settings(scoring={"model_dir": tiny_model_dir}, explain={"mode": "none"})


@pytest.fixture(scope="module")
def analyzed(reports, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Both reports analyzed once by the tiny model: (prior, current) results."""
    from app.pipeline import Analyzer

    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("data"),
        scoring={"model_dir": tiny_model_dir},
        explain={"mode": "none"},
    )
    analyzer = Analyzer.from_settings(settings)
    return tuple(
        analyzer.analyze(path, client="Acme", engagement=f"FY{2022 + i}")
        for i, path in enumerate(reports)
    )


def as_older_model(result: DocumentResult) -> DocumentResult:
    """The result as an older model left it: another digest and name, other labels."""
    return result.model_copy(
        update={
            "stamp": result.stamp.model_copy(
                update={"model_digest": "0" * 64, "model_version": "7", "model_name": "old"}
            ),
            "scores": tuple(s.model_copy(update={"label": "positive"}) for s in result.scores),
        }
    )


def test_files_are_analyzed_through_the_run_service_and_compared(reports, tiny_settings):
    with ResultStore.from_settings(tiny_settings) as store:
        comparer = Comparer(tiny_settings, store)
        prior = comparer.analyze_file(reports[0], client="Acme", engagement="FY2022")
        current = comparer.analyze_file(reports[1], client="Acme", engagement="FY2023")
        comparison = comparer.compare(prior, current)
        assert comparison.prior.result_id == prior.result_id
        assert comparison.stamp.model_digest == comparer.model.digest
        texts = {c.current.text: c.change for c in comparison.changes if c.current}
        assert texts[CURRENT_SECTIONS[0][1][0]] == "unchanged"
        assert texts[CURRENT_SECTIONS[1][1][0]] == "unchanged"  # 5% -> 2%
        assert texts[CURRENT_SECTIONS[0][1][1]] == "new"
        going = next(s for s in comparison.sections if s.section_type == "going_concern")
        assert going.presence == "current_only"
        # the same file again reuses the stored result
        again = comparer.analyze_file(reports[0], client="Acme", engagement="FY2022")
        assert again.result_id == prior.result_id
        with pytest.raises(CompareUsageError, match="same document"):
            comparer.compare(prior, again)


def test_stored_documents_are_found_by_sha256_prefix_and_by_period(analyzed, tiny_settings):
    prior, current = analyzed
    with ResultStore.from_settings(tiny_settings) as store:
        ids = store.save_result(prior), store.save_result(current)
        comparer = Comparer(tiny_settings, store)
        assert comparer.find(prior.doc_id[:8]).result_id == ids[0]
        assert comparer.find(current.doc_id.upper()).result_id == ids[1]
        assert comparer.find("fy2023", client="acme").result_id == ids[1]
        assert comparer.find("2022", client="Acme").result_id == ids[0]
        with pytest.raises(CompareUsageError, match="no document of Acme has this period"):
            comparer.find("FY2019", client="Acme")
        with pytest.raises(CompareUsageError, match="no stored documents of client"):
            comparer.find("FY2022", client="Nobody")
        with pytest.raises(CompareUsageError, match="not a file, nor the sha256"):
            comparer.find("abc")
        assert comparer.previous(store.list_results(doc_id=current.doc_id)[0]).result_id == ids[0]


def test_a_prior_scored_by_another_model_is_rescored_from_its_sentences(analyzed, tiny_settings):
    prior, current = analyzed
    with ResultStore.from_settings(tiny_settings) as store:
        old_id = store.save_result(as_older_model(prior))
        current_id = store.save_result(current)
        comparer = Comparer(tiny_settings, store)
        comparison = comparer.compare(
            comparer.stored(comparer.find(prior.doc_id)),
            comparer.stored(comparer.find(current.doc_id)),
        )
        assert (
            comparison.current.result_id == current_id and comparison.current.rescored_from is None
        )
        assert (
            comparison.prior.model_digest == comparer.model.digest == comparison.stamp.model_digest
        )
        assert comparison.prior.rescored_from["model_digest"] == "0" * 64
        assert comparison.prior.rescored_from["how"] == "sentences"
        assert comparison.prior.rescored_from["result_id"] == old_id
        assert any("had been scored by old 7" in n and "rescored" in n for n in comparison.notes)
        rescored = store.load_result(comparison.prior.result_id)
        assert rescored.stamp.model_digest == comparer.model.digest
        assert [s.label for s in rescored.scores] == [s.label for s in prior.scores]
        assert rescored.sentences == prior.sentences
        # next time the rescored result is found and used as it is
        assert comparer.find(prior.doc_id).result_id == comparison.prior.result_id


def test_a_prior_scored_by_another_model_is_analyzed_again_from_its_kept_pdf(
    analyzed, reports, tiny_settings
):
    from app.ui.documents import keep_pdf

    prior, current = analyzed
    with ResultStore.from_settings(tiny_settings) as store:
        store.save_result(as_older_model(prior))
        store.save_result(current)
        keep_pdf(tiny_settings, reports[0].read_bytes())
        comparer = Comparer(tiny_settings, store)
        comparison = comparer.compare(
            comparer.stored(comparer.find(prior.doc_id)),
            comparer.stored(comparer.find(current.doc_id)),
        )
        assert comparison.prior.rescored_from["how"] == "pdf"
        assert any("analyzed again from its PDF" in n for n in comparison.notes)
        again = store.load_result(comparison.prior.result_id)
        assert (
            again.stamp.model_digest == comparer.model.digest
            and "rescored_from" not in again.settings
        )
        assert again.client == "Acme" and again.engagement == "FY2022"


def test_a_stored_result_by_the_current_model_is_used_instead_of_rescoring(analyzed, tiny_settings):
    prior, current = analyzed
    with ResultStore.from_settings(tiny_settings) as store:
        good = store.save_result(prior)
        old = store.save_result(as_older_model(prior))
        store.save_result(current)
        comparer = Comparer(tiny_settings, store)
        side = comparer.stored(next(s for s in store.list_results() if s.result_id == old))
        comparison = comparer.compare(side, comparer.stored(comparer.find(current.doc_id)))
        assert comparison.prior.result_id == good
        assert comparison.prior.rescored_from["how"] == "stored"


def test_rescoring_from_stored_sentences_keeps_the_sentences_and_drops_old_evidence(tiny_settings):
    from app.compare.rescore import rescore_result
    from models.scoring import SentimentScorer

    prior, _ = pair()
    scorer = SentimentScorer.from_dir(tiny_settings.scoring.model_dir, tiny_settings.scoring)
    rescored = rescore_result(prior, scorer, tiny_settings, result_id=5)
    assert rescored.sentences == prior.sentences
    assert rescored.stamp.model_digest == scorer.digest != prior.stamp.model_digest
    assert rescored.settings["rescored_from"]["result_id"] == 5
    assert rescored.settings["rescored_from"]["how"] == "sentences"
    assert rescored.explanations == ()
    assert len(rescored.scores) == len(prior.sentences)


# --- the command line -----------------------------------------------------------------------


def run_sesame(
    args: list[str], data_dir: Path, model_dir: Path
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SESAME_DATA_DIR": str(data_dir),
        "SESAME_SCORING__MODEL_DIR": str(model_dir),
        "HF_HUB_OFFLINE": "1",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )


def test_cli_compares_files_then_stored_periods_and_the_clients_previous(
    reports, tmp_path, tiny_model_dir
):
    """`sesame compare` as a user runs it: a subprocess, files first, then stored documents."""
    data, out = tmp_path / "data", tmp_path / "out"
    proc = run_sesame(
        [
            "compare",
            str(reports[0]),
            str(reports[1]),
            "--client",
            "Acme",
            "--prior-period",
            "FY2022",
            "--current-period",
            "FY2023",
            "--explain",
            "none",
            "--out",
            str(out),
        ],
        data,
        tiny_model_dir,
    )
    assert proc.returncode == 0, proc.stderr
    # title, 2 headings and 3 sentences last year; a new risk, a new section this year
    assert proc.stdout.strip() == (
        "6 sentences last year, 8 this year: 5 unchanged, 0 edited, 3 new, 1 removed"
    )
    book = out / "compare-acme_2022-vs-acme_2023.xlsx"
    assert tuple(openpyxl.load_workbook(book).sheetnames) == COMPARISON_SHEETS
    data_json = json.loads((out / "compare-acme_2022-vs-acme_2023.json").read_text())
    n = data_json["counts"]
    assert n["prior"] == n["unchanged"] + n["edited"] + n["removed"]
    assert n["current"] == n["unchanged"] + n["edited"] + n["new"]
    assert data_json["stamp"]["prior_sha256"] == data_json["prior"]["doc_id"]
    assert all(
        c["stamp"]["current_sha256"] == data_json["current_sha256"] for c in data_json["changes"]
    )
    assert "Going concern" in proc.stderr or any(
        "going_concern" in s["key"] for s in data_json["sections"]
    )

    # from the store: by period, and the client's latest against its previous
    again = run_sesame(
        ["compare", "--client", "acme", "2022", "FY2023", "--out", str(out), "--explain", "none"],
        data,
        tiny_model_dir,
    )
    assert again.returncode == 0, again.stderr
    latest = run_sesame(
        ["compare", "--client", "Acme", "--out", str(out), "--explain", "none"],
        data,
        tiny_model_dir,
    )
    assert latest.returncode == 0, latest.stderr
    assert "with the client's previous, acme_2022.pdf" in latest.stderr
    with ResultStore.from_settings(load_settings(data_dir=data)) as store:
        assert len(store.list_comparisons(client="Acme")) == 1  # the same two results: replaced
    bad = run_sesame(["compare", "--client", "Acme", "FY1999", "FY2023"], data, tiny_model_dir)
    assert bad.returncode == 2 and "no document of Acme has this period" in bad.stderr


def test_a_pdf_report_is_compared_with_an_html_filing(tmp_path, tiny_settings):
    # last year a PDF, this year an inline-XBRL filing: sections align by their headings and
    # the sentences both years share are unchanged, whatever format carried them
    prior_sections = [
        (
            "Risk Factors",
            [
                "Our results depend on a few large customers.",
                "The loss of any of them could harm our business.",
                "A fire at our only plant halted production for a month.",
            ],
        )
    ]
    prior = write_sections_report(tmp_path / "acme_2023.pdf", "Acme 2023", prior_sections)
    current = write_filing(tmp_path / "acme_2024.htm")
    with ResultStore.from_settings(tiny_settings) as store:
        comparer = Comparer(tiny_settings, store)
        a = comparer.analyze_file(prior, client="Acme", engagement="FY2023")
        b = comparer.analyze_file(current, client="Acme", engagement="FY2024")
        comparison = comparer.compare(a, b)
    assert by_text(comparison, "Our results depend on a few large customers.").change == (
        "unchanged"
    )
    assert by_text(comparison, "The loss of any of them could harm our business.").change == (
        "unchanged"
    )
    assert by_text(comparison, "Supply shortages could delay deliveries.").change == "new"
    fire = by_text(comparison, "A fire at our only plant halted production for a month.")
    assert fire.change == "removed"
    risk = next(s for s in comparison.sections if s.section_type == "risk_factors")
    assert risk.presence == "both"
    counts = comparison.counts
    assert counts["unchanged"] + counts["edited"] + counts["removed"] == counts["prior"]
