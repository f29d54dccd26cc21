"""The Compare page with Streamlit's AppTest: pick a client's two documents, compare, read the
section shifts, new and removed negatives and flipped edits, download the workpaper; a report
scored by another model is rescored and the page says so."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pytest
from compare_support import EDITED_AFTER, NEW, REMOVED, pair
from streamlit.testing.v1 import AppTest

from app.config import load_settings
from app.store import ResultStore
from app.ui import auth
from app.ui.common import PAGE_COMPARE
from app.ui.pages_compare import workpaper_bytes
from app.ui.users import User
from models.scoring import weights_digest

APP = Path(__file__).resolve().parents[2] / "streamlit_app.py"
ALICE = User(login="alice", name="Alice Auditor")


@pytest.fixture
def ui_env(monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path):
    """Settings as the app resolves them: this test's data directory, the tiny model."""
    monkeypatch.setenv("SESAME_SCORING__MODEL_DIR", str(tiny_model_dir))
    return load_settings()


def open_compare(at: AppTest) -> AppTest:
    run(at)  # AppTest switches pages only after a first run
    at.switch_page(PAGE_COMPARE)
    return run(at)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def signed_in() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.session_state[auth.USER_KEY] = ALICE
    return at


def button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    assert len(found) == 1, [b.label for b in at.button]
    return found[0]


def markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_compare_page_shows_shifts_findings_and_the_workpaper(ui_env, tiny_model_dir):
    prior, current = pair(weights_digest(tiny_model_dir))
    with ResultStore.from_settings(ui_env) as store:
        ids = store.save_result(prior), store.save_result(current)
    at = open_compare(signed_in())
    assert at.title[0].value == "Compare"
    footer = " ".join(c.value for c in at.sidebar.caption)
    assert "Model for new analyses: **tiny" in footer  # the model on every page
    assert at.selectbox(key="compare_client").value == "Acme Holdings"
    # the two latest periods are proposed, last year first
    assert at.selectbox(key="compare_prior").value == ids[0]
    assert at.selectbox(key="compare_current").value == ids[1]
    assert "Not compared yet." in [c.value for c in at.caption]
    button(at, "Compare").click()
    run(at)
    assert any(s.value.startswith("Compared") for s in at.success)
    text = markdown(at)
    assert "**6** sentences last year, **6** this year" in text
    assert "**1** edited, **1** new, **1** removed" in text
    frames = [d.value for d in at.dataframe]
    sections = frames[0]
    assert sections["section"].iloc[0] == "Whole document"
    assert set(sections["section"]) >= {"Risk factors", "Business"}
    new_table = frames[1]
    assert list(new_table["sentence"]) == [NEW, EDITED_AFTER]
    assert list(frames[2]["sentence"]) == [REMOVED]
    # the flipped edit with its word difference
    assert ":green[**and seals**]" in text and "neutral → negative" in text
    # stored, so the next visit shows it without comparing again
    with ResultStore.from_settings(ui_env) as store:
        (made,) = store.list_comparisons(client="Acme Holdings")
    again = open_compare(signed_in())
    assert [b.label for b in again.button if b.label.startswith("Compare")] == ["Compare again"]
    book = openpyxl.load_workbook(
        io.BytesIO(workpaper_bytes(ui_env.store_url(), made.comparison_id))
    )
    rows = list(book["New and removed"].iter_rows(values_only=True))
    assert any(NEW in r for r in rows)
    assert prior.doc_id in rows[3][0] and current.doc_id in rows[3][0]


def test_a_report_scored_by_another_model_is_rescored_and_the_page_says_so(ui_env, tiny_model_dir):
    prior, current = pair(weights_digest(tiny_model_dir))
    old = prior.model_copy(
        update={"stamp": prior.stamp.model_copy(update={"model_digest": "0" * 64})}
    )
    with ResultStore.from_settings(ui_env) as store:
        store.save_result(old)
        store.save_result(current)
    at = open_compare(signed_in())
    button(at, "Compare").click()
    run(at)
    warnings = [w.value for w in at.warning]
    assert any("had been scored by" in w and "rescored" in w for w in warnings), warnings


def test_compare_page_without_two_documents_says_what_to_do(ui_env, tiny_model_dir):
    at = open_compare(signed_in())
    assert any("No documents with a client yet" in i.value for i in at.info)
    prior, _ = pair(weights_digest(tiny_model_dir))
    with ResultStore.from_settings(ui_env) as store:
        store.save_result(prior)
    at = open_compare(signed_in())
    assert any("analyze another year's report" in i.value for i in at.info)
