"""`sesame analyze` end to end, as a user runs it: a real subprocess, real PDFs, files read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from pdfs import (
    REPORT_BULLETS,
    write_clean_report,
    write_encrypted,
    write_image_only,
    write_not_a_pdf,
    write_truncated,
)

SESAME = [sys.executable, "-m", "app.cli"]
ROOT = Path(__file__).resolve().parents[2]


def run_sesame(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SESAME_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run(
        [*SESAME, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600
    )


def sheet_rows(path: Path, sheet: str) -> list[tuple]:
    wb = openpyxl.load_workbook(path, rich_text=True)
    return [tuple(r) for r in wb[sheet].iter_rows(values_only=True)]


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    """One analyze run over a clean report and three bad files: (process, out dir, data dir)."""
    inputs = tmp_path_factory.mktemp("inputs")
    out = tmp_path_factory.mktemp("out")
    data_dir = tmp_path_factory.mktemp("data")
    write_clean_report(inputs / "annual_report.pdf")
    write_encrypted(inputs / "locked.pdf")
    write_truncated(inputs / "broken.pdf")
    write_not_a_pdf(inputs / "webpage.pdf")
    proc = run_sesame(
        [
            "analyze",
            str(inputs),
            "--out",
            str(out),
            "--model-dir",
            str(tiny_model_dir),
            "--explain",
            "flagged",
            "--client",
            "Acme Holdings",
            "--engagement",
            "FY2023 audit",
        ],
        data_dir,
    )
    return proc, out, data_dir


def test_analyze_reports_every_file_with_a_count_line_and_exit_1(mixed_run):
    proc, out, _ = mixed_run
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "4 documents: 1 ok, 0 partial, 3 failed"
    for stem in ("annual_report", "locked", "broken", "webpage"):
        assert (out / f"{stem}.xlsx").is_file()
        assert (out / f"{stem}.json").is_file()
    assert "password-protected" in proc.stderr
    assert len(list(out.glob("run-*.json"))) == 1


def test_analyze_workpaper_cells_carry_sentences_labels_and_stamp(mixed_run, tiny_model_dir):
    _, out, _ = mixed_run
    xlsx = out / "annual_report.xlsx"
    data = json.loads((out / "annual_report.json").read_text())
    stamp = data["stamp"]
    rows = sheet_rows(xlsx, "Sentences")
    header_at = next(i for i, r in enumerate(rows) if r and r[0] == "sentence id")
    header = list(rows[header_at])
    body = [dict(zip(header, r, strict=False)) for r in rows[header_at + 1 :] if r[0] is not None]
    assert len(body) == len(data["sentences"]) > 5
    texts = [str(r["sentence"]) for r in body]
    for bullet in REPORT_BULLETS:
        assert bullet in texts
    labels = {r["label"] for r in body}
    assert labels <= {"positive", "negative", "neutral"}
    # The stamp is on every row: model digest, run id and the input's sha256.
    for row in body:
        values = {str(v) for v in row.values()}
        assert stamp["model_sha256"] in values
        assert stamp["run_id"] in values
        assert data["input_sha256"] in values
    # Every sheet's header carries the stamp.
    wb = openpyxl.load_workbook(xlsx)
    for ws in wb.worksheets:
        head = " ".join(str(c.value) for row in ws.iter_rows(max_row=6) for c in row if c.value)
        assert stamp["model_sha256"] in head and stamp["run_id"] in head, ws.title
    cover = " ".join(str(v) for r in sheet_rows(xlsx, "Cover") for v in r if v is not None)
    assert "Acme Holdings" in cover and "FY2023 audit" in cover


def test_analyze_json_stamps_every_sentence_and_scores_obvious_ones(mixed_run):
    _, out, _ = mixed_run
    data = json.loads((out / "annual_report.json").read_text())
    assert data["status"] == "ok"
    assert {
        "model_name",
        "model_version",
        "model_sha256",
        "code_version",
        "run_id",
        "created_at",
    } <= set(data["stamp"])
    for record in data["sentences"]:
        assert record["stamp"] == data["stamp"]
        assert record["doc_sha256"] == data["input_sha256"]
        assert record["page_no"] == 1 and record["boxes"]
    by_text = {r["text"]: r for r in data["sentences"]}
    grew = by_text["Revenue grew by twelve percent to a record level."]
    assert grew["label"] == "positive"
    # flagged mode: every positive/negative sentence has evidence, neutral ones have none;
    # headings, table rows and page furniture are scored but never explained (not in the tone)
    for record in data["sentences"]:
        flagged = record["label"] != "neutral" and record["kind"] in ("sentence", "list_item")
        assert (record["explanation"] is not None) == flagged
    assert any(r["kind"] == "heading" and r["label"] for r in data["sentences"])


def test_analyze_failed_files_explain_themselves_in_the_workpaper(mixed_run):
    _, out, _ = mixed_run
    for stem, words in (("locked", "password"), ("broken", "damaged"), ("webpage", "HTML")):
        data = json.loads((out / f"{stem}.json").read_text())
        assert data["status"] == "failed"
        assert any(words.lower() in e["message"].lower() for e in data["errors"])
        exceptions = " ".join(
            str(v)
            for r in sheet_rows(out / f"{stem}.xlsx", "Exceptions")
            for v in r
            if v is not None
        )
        assert words.lower() in exceptions.lower()


def test_analyze_records_the_run_and_results_in_the_store(mixed_run):
    _, _, data_dir = mixed_run
    from app.store import ResultStore

    store = ResultStore(f"sqlite:///{data_dir / 'results.db'}")
    runs = store.list_runs()
    assert len(runs) == 1 and runs[0].kind == "analyze"
    docs = store.run_documents(runs[0].run_id)
    assert sorted(d.status for d in docs) == ["failed", "failed", "failed", "ok"]


def test_analyze_password_opens_encrypted_file(tmp_path, tiny_model_dir):
    pdf = write_encrypted(tmp_path / "locked.pdf")
    proc = run_sesame(
        [
            "analyze",
            str(pdf),
            "--out",
            str(tmp_path / "out"),
            "--model-dir",
            str(tiny_model_dir),
            "--password",
            "userpass",
            "--explain",
            "none",
            "--no-store",
        ],
        tmp_path / "data",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("1 document: 1 ok, 0 partial, 0 failed")
    data = json.loads((tmp_path / "out" / "locked.json").read_text())
    assert data["sentences"] and data["document"]["encrypted"] is True


def test_analyze_scan_is_failed_needs_ocr_never_empty_success(tmp_path, tiny_model_dir):
    pdf = write_image_only(tmp_path / "scan.pdf")
    proc = run_sesame(
        [
            "analyze",
            str(pdf),
            "--ocr",
            "off",
            "--out",
            str(tmp_path / "out"),
            "--model-dir",
            str(tiny_model_dir),
            "--explain",
            "none",
            "--no-store",
        ],
        tmp_path / "data",
    )
    assert proc.returncode == 1
    data = json.loads((tmp_path / "out" / "scan.json").read_text())
    assert data["status"] == "failed"
    assert any(e["code"] == "needs_ocr" for e in data["errors"])


def test_analyze_usage_errors_exit_2(tmp_path):
    missing = run_sesame(
        ["analyze", str(tmp_path / "nope.pdf"), "--out", str(tmp_path)], tmp_path / "data"
    )
    assert missing.returncode == 2
    bad_option = run_sesame(["analyze", str(tmp_path), "--explain", "sometimes"], tmp_path / "data")
    assert bad_option.returncode == 2
    long_client = run_sesame(["analyze", str(tmp_path), "--client", "A" * 537], tmp_path / "data")
    assert long_client.returncode == 2
    assert "537 characters long; at most 120" in " ".join(long_client.stderr.split())


def test_help_documents_every_command(tmp_path):
    proc = run_sesame(["--help"], tmp_path / "data")
    assert proc.returncode == 0
    for command in ("analyze", "version"):
        assert command in proc.stdout


def test_one_result_per_document_model_and_output_settings(tmp_path, tiny_model_dir):
    """The result identity rule: the password is not part of it (a locked file's failure is
    tried again and replaced once the password opens it), an identical run opens the stored
    result, `--rerun` replaces it and says what changed, and is refused once it has reviews."""
    from app.store import ResultStore

    pdf = write_encrypted(tmp_path / "locked.pdf")
    base = ["analyze", str(pdf), "--out", str(tmp_path / "out"), "--model-dir"]
    base += [str(tiny_model_dir), "--explain", "none"]
    data = tmp_path / "data"
    store_url = f"sqlite:///{data / 'results.db'}"

    locked = run_sesame(base, data)
    assert locked.returncode == 1 and "0 ok, 0 partial, 1 failed" in locked.stdout
    opened = run_sesame([*base, "--password", "userpass"], data)
    assert opened.returncode == 0, opened.stderr
    assert "replaces the stored failed attempt" in opened.stdout + opened.stderr
    with ResultStore(store_url) as store:
        (only,) = store.list_results()
        assert only.status == "ok"
    again = run_sesame([*base, "--password", "userpass"], data)
    assert "already analyzed with this model and settings" in again.stdout + again.stderr
    rerun = run_sesame([*base, "--password", "userpass", "--rerun"], data)
    assert rerun.returncode == 0, rerun.stderr
    assert "re-run of the result of" in rerun.stdout + rerun.stderr
    assert "no label changed" in rerun.stdout + rerun.stderr
    with ResultStore(store_url) as store:
        (same,) = store.list_results()
        assert same.result_id == only.result_id and same.run_id != only.run_id
        store.add_review(
            same.result_id,
            "comment",
            "alice",
            expected_previous=None,
            sentence_index=0,
            comment="checked",
        )
    refused = run_sesame([*base, "--password", "userpass", "--rerun"], data)
    assert (
        "not analyzed again: its stored result has 1 review action(s)"
        in refused.stdout + refused.stderr
    )
    with ResultStore(store_url) as store:
        (kept,) = store.list_results()
        assert kept.run_id == same.run_id
        assert [r.comment for r in store.reviews(result_id=kept.result_id)] == ["checked"]


def test_analyze_says_why_evidence_is_sampled_when_the_model_ships_no_explainer(mixed_run):
    proc, out, _ = mixed_run
    why = "no amortized explainer is shipped with this model; evidence is sampled instead"
    assert f"SHAP evidence: sampled Owen values ({why})" in " ".join(proc.stderr.split())
    (summary_path,) = out.glob("run-*.json")
    summary = json.loads(summary_path.read_text())
    assert summary["explain"]["requested"] == "auto"
    assert summary["explain"]["method"] == "sampled"
    assert summary["explain"]["note"] == why
    data = json.loads((out / "annual_report.json").read_text())
    explained = [s["explanation"] for s in data["sentences"] if s["explanation"]]
    assert explained and {e["method"] for e in explained} == {"sampled"}
    assert {e["note"] for e in explained} == {why}


def test_explain_method_sampled_forces_sampling_and_is_part_of_the_identity(
    tmp_path, tiny_model_with_explainer
):
    pdf = write_clean_report(tmp_path / "annual_report.pdf")
    data_dir = tmp_path / "data"

    def analyze(method: str, out: Path) -> list[dict]:
        proc = run_sesame(
            [
                "analyze",
                str(pdf),
                "--out",
                str(out),
                "--model-dir",
                str(tiny_model_with_explainer),
                "--explain-method",
                method,
                "--no-monitor",
            ],
            data_dir,
        )
        assert proc.returncode == 0, proc.stderr
        data = json.loads((out / "annual_report.json").read_text())
        return [s for s in data["sentences"] if s["explanation"]]

    amortized = analyze("auto", tmp_path / "auto")
    assert amortized and {s["explanation"]["method"] for s in amortized} == {"amortized"}
    assert all(
        s["evidence_method"].startswith("amortized explainer (Spearman 0.84") for s in amortized
    )
    # the same report with sampling is another result, not the stored amortized one
    sampled = analyze("sampled", tmp_path / "sampled")
    assert {s["explanation"]["method"] for s in sampled} == {"sampled"}
    assert {s["explanation"]["note"] for s in sampled} == {""}
    assert {s["evidence_method"] for s in sampled} == {
        "sampled Owen values, 3 evaluations per word"
    }
