"""HTML filings on the review screen (Streamlit's AppTest): uploaded like PDFs, a sentence
shown highlighted in the sanitised filing with its tagged facts beside the evidence."""

from __future__ import annotations

from pathlib import Path

import pytest
from ixbrl import BOLD, END, esef_package, esef_report, fact, filing
from streamlit.testing.v1 import AppTest

from app.config import load_settings
from app.store import ResultStore
from app.ui import auth
from app.ui.common import PAGE_ANALYZE, PAGE_REVIEW
from app.ui.documents import documents_dir, find_document, keep_document
from app.ui.users import User

APP = Path(__file__).resolve().parents[2] / "streamlit_app.py"
ALICE = User(login="alice", name="Alice Auditor")
EVIL = (
    f"{BOLD}Outlook{END}"
    "<script>window.__pwned = 1</script>"
    '<div onclick="window.__pwned = 2"><span>We expect revenue of $'
    + fact("us-gaap:Revenues", "40", scale="9", format="ixt:num-dot-decimal", id="f1")
    + ' billion next year.</span><img src="http://evil.example/y.png" onerror="alert(1)"/></div>'
)


@pytest.fixture
def ui_env(monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path):
    monkeypatch.setenv("SESAME_SCORING__MODEL_DIR", str(tiny_model_dir))
    monkeypatch.setenv("SESAME_EXPLAIN__MODE", "none")
    return load_settings()


def app_as(user: User) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.session_state[auth.USER_KEY] = user
    return at


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_kept_documents_are_found_whatever_their_kind(ui_env) -> None:
    html, package = filing(), esef_package(esef_report())
    for data, suffix in ((html, ".html"), (package, ".zip")):
        digest, path = keep_document(ui_env, data)
        assert path == documents_dir(ui_env) / f"{digest}{suffix}"
        assert find_document(ui_env, digest) == data


def test_an_uploaded_filing_is_reviewed_in_the_filing_itself(ui_env) -> None:
    data = filing([EVIL])
    at = app_as(ALICE)
    run(at)
    at.switch_page(PAGE_ANALYZE)
    run(at)
    at.file_uploader(key="analyze_files").set_value([("acme-10k.htm", data, "text/html")])
    next(b for b in at.button if b.label == "Analyze").click()
    run(at)
    assert any("1 document: 1 ok" in s for s in (e.value for e in at.success)), [
        e.value for e in at.error
    ]
    with ResultStore.from_settings(ui_env) as store:
        (summary,) = store.list_results()
        result = store.load_result(summary.result_id)
    assert find_document(ui_env, result.doc_id) == data  # kept for the review screen
    target = next(s for s in result.sentences if s.text.startswith("We expect revenue"))

    at.query_params["result"] = str(summary.result_id)
    at.session_state["review_tab"] = "Sentences"
    at.session_state[f"sentence_{summary.result_id}"] = target.index
    at.switch_page(PAGE_REVIEW)
    run(at)
    shown = [h.proto.body for h in at.get("html")]
    (fragment,) = [h for h in shown if 'class="sesame-filing"' in h]
    assert "<mark" in fragment and "billion next year." in fragment
    for bad in ("<script", "__pwned", "onclick", "onerror", "evil.example", "<img"):
        assert bad not in fragment, bad
    assert not at.get("image")  # no page image for an HTML filing
    facts = [d.value for d in at.dataframe if "concept" in d.value.columns]
    assert len(facts) == 1 and list(facts[0]["concept"]) == ["us-gaap:Revenues"]
    assert list(facts[0]["value"]) == ["40000000000"]
    captions = [c.value for c in at.caption]
    assert any(c.startswith("Page 1 of the filing") for c in captions), captions
