"""The results store, on SQLite (WAL) and on a real PostgreSQL server, by behaviour."""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import pickle
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from pg import PostgresServer, postgres_server  # noqa: F401  (fixture)

from app.config import load_settings
from app.records import (
    BBox,
    Block,
    Document,
    DocumentResult,
    Explanation,
    Label,
    Line,
    ManifestEntry,
    Page,
    Score,
    Sentence,
    StageError,
    Stamp,
    WordWeight,
    settings_digest,
)
from app.store import SCHEMA_VERSION, Base, ResultStore, ReviewConflict, StoreError

MODEL = "d" * 64
OTHER_MODEL = "e" * 64
SETTINGS: dict[str, object] = {
    "scoring": {"batch_size": 64, "max_length": 128},
    "explain": {"mode": "flagged"},
}


def doc_id(n: int) -> str:
    return hashlib.sha256(f"document {n}".encode()).hexdigest()


def make_result(
    n: int = 0,
    *,
    labels: tuple[Label, ...] = ("positive", "negative", "neutral"),
    model_digest: str = MODEL,
    settings: dict[str, object] | None = None,
    client: str | None = "ACME",
    engagement: str | None = "FY2025",
    errors: tuple[StageError, ...] = (),
    created_at: datetime | None = None,
) -> DocumentResult:
    """A hand-built result: one sentence per label, on pages 1 and 2, with SHAP for the first."""
    did = doc_id(n)
    document = Document(
        doc_id=did,
        file_name=f"report-{n}.pdf",
        size_bytes=1000 + n,
        n_pages=2,
        title=f"Report {n}",
        producer="reportlab",
    )
    box = BBox(x0=72.0, top=100.25, x1=540.5, bottom=112.0)
    pages = tuple(
        Page(
            doc_id=did,
            page_no=p,
            width=612.0,
            height=792.0,
            text=f"Page {p} text.",
            lines=(Line(start=0, end=13, bbox=box),),
            blocks=(
                Block(kind="text", start=0, end=13, bbox=box),
                Block(kind="table", bbox=box, text="Revenue | 10"),
            ),
        )
        for p in (1, 2)
    )
    sentences, scores = [], []
    for i, label in enumerate(labels):
        sentences.append(
            Sentence(
                doc_id=did,
                index=i,
                page_no=1 + i % 2,
                start=0,
                end=13,
                text=f"Sentence {i}.",
                kind="heading" if i == 0 else "sentence",
                section="Outlook" if i else None,
                section_type="outlook" if i else None,
                boxes=(box, box.union(box)),
            )
        )
        probs = {"positive": 0.1, "negative": 0.1, "neutral": 0.1}
        probs[label] = 0.8
        scores.append(
            Score(
                sentence_index=i,
                label=label,
                probabilities=probs,  # type: ignore[arg-type]
                confidence=0.8,
            )
        )
    explanations = (
        (
            Explanation(
                sentence_index=0,
                label=labels[0],
                words=("Sentence", "0."),
                values=(0.1 + 0.2, -1e-17),
                base_value=1 / 3,
                output_value=0.8,
                additivity_error=2.5e-9,
                top_for=(WordWeight(word="Sentence", weight=0.3),),
                top_against=(WordWeight(word="0.", weight=-1e-17),),
                settings={"max_evals": 200, "algorithm": "partition", "fixed": True, "seed": None},
                model_digest=model_digest,
                cached=True,
            ),
        )
        if labels
        else ()
    )
    return DocumentResult(
        source=f"/in/report-{n}.pdf",
        document=document,
        status="partial" if errors else "ok",
        pages=pages,
        sentences=tuple(sentences),
        scores=tuple(scores),
        explanations=explanations,
        errors=errors,
        stamp=Stamp(
            model_name="sesame-sentiment",
            model_version="3",
            model_digest=model_digest,
            code_version="0.1.0",
            git_commit="abc123",
            run_id="run-1",
            created_at=created_at or datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        ),
        settings=SETTINGS if settings is None else settings,
        timings={"ingest": 0.5, "scoring": 1.25},
        client=client,
        engagement=engagement,
    )


@pytest.fixture(scope="module")
def postgres_store_url(postgres_server: PostgresServer) -> Iterator[str]:  # noqa: F811
    """One database for the module's PostgreSQL tests, emptied before each (faster than a
    fresh database per test on this 2-core machine)."""
    url = postgres_server.create_database("sesame_store")
    yield url
    postgres_server.drop_database(url)


def empty_tables(url: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        tables = [t.name for t in Base.metadata.sorted_tables if sa.inspect(conn).has_table(t.name)]
        if tables:
            conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """The same tests on a SQLite file and on an empty database of a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'results.db'}"
    url = request.getfixturevalue("postgres_store_url")
    empty_tables(url)
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[ResultStore]:
    result_store = ResultStore(store_url)
    result_store.create_schema()
    yield result_store
    result_store.dispose()


def count_rows(store: ResultStore, table: str) -> int:
    engine = sa.create_engine(store.url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


# --- results --------------------------------------------------------------------------------


def test_saved_result_loads_back_equal(store: ResultStore):
    errors = (
        StageError(stage="ingest", code="needs_ocr", page_no=2, message="Page 2: no text."),
        StageError(stage="scoring", code="too_long", message="Truncated one sentence."),
    )
    plus_two = timezone(timedelta(hours=2))
    result = make_result(errors=errors, created_at=datetime(2026, 5, 6, 7, 8, 9, 1, plus_two))

    result_id = store.save_result(result)

    loaded = store.load_result(result_id)
    assert loaded == result
    assert loaded.stamp.created_at.tzinfo is not None
    assert store.load_result(doc_id=doc_id(0)) == result
    assert store.load_result(doc_id=doc_id(0), model_digest=OTHER_MODEL) is None


def test_result_without_readable_bytes_is_stored_by_source(store: ResultStore):
    result = make_result(labels=()).model_copy(
        update={
            "document": None,
            "pages": (),
            "status": "failed",
            "errors": (
                StageError(stage="ingest", code="unreadable", message="Cannot open.", fatal=True),
            ),
        }
    )

    first = store.save_result(result)

    assert store.save_result(result) == first
    assert store.load_result(first) == result
    assert [s.status for s in store.list_results()] == ["failed"]


def test_saving_the_same_result_twice_stores_it_once(store: ResultStore):
    result = make_result()

    first = store.save_result(result)
    second = store.save_result(result.model_copy(update={"timings": {"ingest": 99.0}}))

    assert second == first
    assert store.load_result(first).timings == result.timings
    assert count_rows(store, "results") == 1
    assert count_rows(store, "sentences") == 3
    assert count_rows(store, "documents") == 1


def test_same_document_with_another_model_or_settings_is_a_new_result(store: ResultStore):
    ids = {
        store.save_result(make_result()),
        store.save_result(make_result(model_digest=OTHER_MODEL)),
        store.save_result(make_result(settings={**SETTINGS, "explain": {"mode": "all"}})),
    }

    assert len(ids) == 3
    assert count_rows(store, "documents") == 1
    assert (
        store.load_result(doc_id=doc_id(0), model_digest=OTHER_MODEL).stamp.model_digest
        == OTHER_MODEL
    )


def test_has_result_only_for_the_same_model_and_settings(store: ResultStore):
    digest = settings_digest(SETTINGS)
    failed = make_result(1).model_copy(update={"status": "failed"})
    store.save_result(make_result(0))
    store.save_result(failed)

    assert store.has_result(doc_id(0), MODEL, digest)
    assert not store.has_result(doc_id(0), OTHER_MODEL, digest)
    assert not store.has_result(doc_id(0), MODEL, settings_digest({"other": 1}))
    assert not store.has_result(doc_id(2), MODEL, digest)
    assert store.has_result(doc_id(1), MODEL, digest)
    assert not store.has_result(doc_id(1), MODEL, digest, statuses=("ok", "partial"))


def test_replace_rewrites_an_unreviewed_result_in_place(store: ResultStore):
    first = store.save_result(make_result(labels=("neutral", "neutral")))
    retried = make_result(labels=("negative",))

    replaced = store.save_result(retried, on_conflict="replace")

    assert replaced == first
    assert store.load_result(first) == retried
    assert count_rows(store, "sentences") == 1
    assert count_rows(store, "results") == 1


def test_replace_is_refused_once_the_result_is_reviewed(store: ResultStore):
    result_id = store.save_result(make_result())
    store.add_review(result_id, "agree", "ann", sentence_index=0, expected_previous=None)

    with pytest.raises(StoreError, match="review"):
        store.save_result(make_result(labels=("neutral",)), on_conflict="replace")

    assert store.load_result(result_id) == make_result()


def test_failed_save_leaves_nothing_behind(store: ResultStore):
    # The document row is written before the result row, whose settings cannot be stored.
    unstorable = make_result(settings={"when": object()})

    with pytest.raises((TypeError, sa.exc.StatementError)):
        store.save_result(unstorable)

    assert store.list_documents() == []
    assert count_rows(store, "results") == 0


def test_not_a_number_is_refused_on_every_backend(store: ResultStore):
    result = make_result()
    explanation = result.explanations[0].model_copy(update={"values": (float("nan"), 0.1)})

    with pytest.raises((ValueError, sa.exc.StatementError), match="JSON compliant"):
        store.save_result(result.model_copy(update={"explanations": (explanation,)}))

    assert count_rows(store, "results") == 0


def test_malformed_result_is_refused(store: ResultStore):
    result = make_result()
    doubled = result.model_copy(update={"scores": result.scores + result.scores[:1]})

    with pytest.raises(StoreError, match="more than one score for sentence index 0"):
        store.save_result(doubled)

    assert count_rows(store, "results") == 0


def test_evidence_added_later_is_kept_beside_the_first_and_must_come_from_the_same_model(
    store: ResultStore,
):
    result = make_result(40)
    result_id = store.save_result(result)
    (first,) = result.explanations
    later = first.model_copy(update={"sentence_index": 2, "label": "neutral"})
    again = first.model_copy(update={"base_value": 0.0})  # sentence 0 again: not replaced
    assert store.add_explanations(result_id, [later, again]) == 1
    loaded = store.load_result(result_id)
    assert loaded is not None
    assert [(e.sentence_index, e.base_value) for e in loaded.explanations] == [
        (0, first.base_value),
        (2, first.base_value),
    ]
    (summary,) = [r for r in store.list_results() if r.result_id == result_id]
    assert summary.n_explained == 2
    other = first.model_copy(update={"sentence_index": 1, "model_digest": "f" * 64})
    with pytest.raises(StoreError, match="another model"):
        store.add_explanations(result_id, [other])
    with pytest.raises(StoreError, match="no result"):
        store.add_explanations(10**6, [later])


def test_list_results_filters_and_counts_labels(store: ResultStore):
    store.save_result(make_result(0, labels=("negative", "negative", "neutral")))
    store.save_result(make_result(1, client="Globex"))
    store.save_result(
        make_result(2, errors=(StageError(stage="ingest", code="x", message="m"),)),
        run_id="batch-7",
    )

    acme = store.list_results(client="ACME")
    assert [r.file_name for r in acme] == ["report-2.pdf", "report-0.pdf"]
    # sentence 0 is a heading: scored and kept, but not counted with the labels (tone kinds)
    assert acme[1].label_counts == {"positive": 0, "negative": 1, "neutral": 1}
    assert (acme[1].n_sentences, acme[1].n_scored, acme[1].n_explained) == (3, 3, 1)
    assert [r.file_name for r in store.list_results(status="partial")] == ["report-2.pdf"]
    assert [r.run_id for r in store.list_results(run_id="batch-7")] == ["batch-7"]
    assert [r.doc_id for r in store.list_results(doc_id=doc_id(1))] == [doc_id(1)]
    assert len(store.list_results(limit=2)) == 2


def test_list_documents_by_client(store: ResultStore):
    store.save_result(make_result(0))
    store.save_result(make_result(1, client="Globex"))

    assert store.list_documents() == [make_result(0).document, make_result(1).document]
    assert [d.doc_id for d in store.list_documents(client="Globex")] == [doc_id(1)]
    assert store.list_documents(client="ACME", engagement="FY1999") == []


def test_sentences_filter_by_label_page_and_section(store: ResultStore):
    result_id = store.save_result(
        make_result(labels=("positive", "negative", "negative", "neutral"))
    )

    negative = store.sentences(result_id, label="negative")
    assert [(s.index, sc.label) for s, sc in negative] == [(1, "negative"), (2, "negative")]
    assert [s.index for s, _ in store.sentences(result_id, page_no=2)] == [1, 3]
    assert [
        s.index
        for s, _ in store.sentences(result_id, section="Outlook", label="negative", page_no=1)
    ] == [2]
    assert [s.index for s, _ in store.sentences(result_id, section_type="outlook")] == [1, 2, 3]
    assert store.sentences(result_id, min_confidence=0.9) == []
    assert len(store.sentences(result_id)) == 4


def test_unscored_sentences_come_without_a_score(store: ResultStore):
    result = make_result()
    result_id = store.save_result(result.model_copy(update={"scores": result.scores[:1]}))

    rows = store.sentences(result_id)

    assert [sc is None for _, sc in rows] == [False, True, True]


def test_create_schema_is_idempotent_and_refuses_other_versions(store: ResultStore):
    store.save_result(make_result())
    store.create_schema()
    assert count_rows(store, "results") == 1

    engine = sa.create_engine(store.url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE store_meta SET value = :v WHERE key = 'schema_version'"),
            {"v": str(SCHEMA_VERSION + 1)},
        )
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}"):
        ResultStore(store.url).create_schema()


def test_every_sentence_and_page_field_survives_the_store(store: ResultStore):
    result = make_result()
    first = result.sentences[0].model_copy(update={"end_page_no": 2, "end_page_end": 17})
    page = result.pages[0].model_copy(update={"rotation": 90})
    result = result.model_copy(
        update={"sentences": (first, *result.sentences[1:]), "pages": (page, *result.pages[1:])}
    )
    loaded = store.load_result(store.save_result(result))
    assert loaded.sentences[0].end_page_no == 2 and loaded.sentences[0].end_page_end == 17
    assert loaded == result


def test_a_version_1_store_is_migrated_and_its_rows_still_load(store: ResultStore):
    result = make_result()
    result_id = store.save_result(result)
    engine = sa.create_engine(store.url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:  # as a store written by sesame before schema version 2
        conn.execute(sa.text("ALTER TABLE sentences DROP COLUMN detail"))
        conn.execute(sa.text("UPDATE store_meta SET value = '1' WHERE key = 'schema_version'"))
    reopened = ResultStore(store.url)
    reopened.create_schema()
    with engine.connect() as conn:
        version = conn.execute(
            sa.text("SELECT value FROM store_meta WHERE key = 'schema_version'")
        ).scalar_one()
        columns = {c["name"] for c in sa.inspect(conn).get_columns("sentences")}
    assert version == str(SCHEMA_VERSION) and "detail" in columns
    assert reopened.load_result(result_id) == result  # rows without detail load as before
    reopened.dispose()


def test_explanations_stored_before_methods_read_as_sampled(store: ResultStore):
    result = make_result()
    result_id = store.save_result(result)
    engine = sa.create_engine(store.url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:  # rows written before Explanation.method existed
        rows = conn.execute(sa.text("SELECT result_id, sentence_index, detail FROM explanations"))
        for rid, index, detail in list(rows):
            detail = json.loads(detail) if isinstance(detail, str) else dict(detail)
            assert detail.pop("method") == "sampled"
            detail.pop("fidelity")
            detail.pop("note")
            conn.execute(
                sa.text(
                    "UPDATE explanations SET detail = :d "
                    "WHERE result_id = :r AND sentence_index = :i"
                ),
                {"d": json.dumps(detail), "r": rid, "i": index},
            )
    engine.dispose()
    (loaded,) = store.load_result(result_id).explanations
    assert loaded.method == "sampled" and loaded.fidelity == {} and loaded.note == ""
    assert loaded == result.explanations[0]


def test_amortized_explanations_keep_their_method_and_fidelity(store: ResultStore):
    result = make_result()
    fidelity = {"spearman": 0.84, "top1": 0.86, "blessed": True, "set": "report sentences"}
    amortized = result.explanations[0].model_copy(
        update={"method": "amortized", "fidelity": fidelity}
    )
    result_id = store.save_result(result.model_copy(update={"explanations": (amortized,)}))
    (loaded,) = store.load_result(result_id).explanations
    assert loaded.method == "amortized" and loaded.fidelity == fidelity


def test_unsupported_url_is_refused():
    with pytest.raises(StoreError, match="Unsupported results-store URL"):
        ResultStore("mysql://user@localhost/sesame")


def test_store_from_settings_is_a_sqlite_wal_file_in_the_data_dir(_isolated_data_dir):
    store = ResultStore.from_settings(load_settings())
    store.save_result(make_result())

    path = _isolated_data_dir / "results.db"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.list_results()[0].doc_id == doc_id(0)
    store.dispose()


def test_foreign_keys_are_enforced(store: ResultStore):
    run = store.start_run("batch")

    with pytest.raises(sa.exc.IntegrityError):
        store.record_run_document(run.run_id, "a.pdf", "ok", result_id=12345)


def test_store_pickles_as_its_url(store: ResultStore):
    store.save_result(make_result())

    copy = pickle.loads(pickle.dumps(store))

    assert copy.url == store.url
    assert copy.load_result(doc_id=doc_id(0)) == make_result()
    copy.dispose()


# --- runs -----------------------------------------------------------------------------------


def manifest(*paths: str) -> list[ManifestEntry]:
    return [
        ManifestEntry(path=p, sha256=hashlib.sha256(p.encode()).hexdigest(), size_bytes=1)
        for p in paths
    ]


def test_run_lists_its_manifest_inputs_as_pending(store: ResultStore):
    stamp = make_result().stamp

    run = store.start_run(
        "batch", manifest=manifest("a.pdf", "b.pdf", "a.pdf"), stamp=stamp, settings=SETTINGS
    )

    assert run.status == "running"
    assert run.document_counts == {"pending": 2}
    assert run.stamp == stamp
    assert [d.source for d in store.run_documents(run.run_id)] == ["a.pdf", "b.pdf"]
    assert store.get_run(run.run_id) == run


def test_run_document_attempts_count_each_try(store: ResultStore):
    run = store.start_run("batch", manifest=manifest("a.pdf", "b.pdf", "c.pdf"))
    result_id = store.save_result(make_result())

    store.record_run_document(run.run_id, "a.pdf", "running")
    store.record_run_document(run.run_id, "a.pdf", "failed", error="worker died")
    store.record_run_document(run.run_id, "a.pdf", "running")
    a = store.record_run_document(
        run.run_id, "a.pdf", "ok", doc_id=doc_id(0), timings={"total": 2.5}, result_id=result_id
    )
    b = store.record_run_document(run.run_id, "b.pdf", "failed", error="encrypted")
    c = store.record_run_document(run.run_id, "c.pdf", "skipped", doc_id=doc_id(3))

    assert (a.status, a.attempts, a.error, a.timings, a.result_id) == (
        "ok",
        2,
        None,
        {"total": 2.5},
        result_id,
    )
    assert a.started_at <= a.finished_at
    assert (b.status, b.attempts, b.error) == ("failed", 1, "encrypted")
    assert (c.status, c.attempts, c.doc_id) == ("skipped", 0, doc_id(3))
    assert [d.source for d in store.run_documents(run.run_id, statuses=["failed"])] == ["b.pdf"]


def test_resumed_run_keeps_its_finished_documents(store: ResultStore):
    run = store.start_run("batch", run_id="nightly-1", manifest=manifest("a.pdf", "b.pdf"))
    store.record_run_document(run.run_id, "a.pdf", "ok")
    store.record_run_document(run.run_id, "b.pdf", "running")
    assert store.finish_run(run.run_id).status == "interrupted"

    resumed = store.start_run(
        "batch", run_id="nightly-1", manifest=manifest("a.pdf", "b.pdf", "c.pdf")
    )

    assert resumed.status == "running" and resumed.finished_at is None
    todo = store.run_documents("nightly-1", statuses=["pending", "running", "failed"])
    assert [d.source for d in todo] == ["b.pdf", "c.pdf"]
    assert store.run_documents("nightly-1")[0].attempts == 1
    with pytest.raises(StoreError, match="batch run, not a analyze run"):
        store.start_run("analyze", run_id="nightly-1")


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["ok", "skipped"], "ok"),
        (["ok", "partial"], "partial"),
        (["ok", "failed"], "partial"),
        (["failed", "failed"], "failed"),
        (["ok", "pending"], "interrupted"),
        ([], "ok"),
    ],
)
def test_finished_run_status_follows_its_documents(store: ResultStore, statuses, expected):
    run = store.start_run("batch")
    for i, status in enumerate(statuses):
        store.record_run_document(run.run_id, f"{i}.pdf", status)

    finished = store.finish_run(run.run_id, summary={"documents": len(statuses)})

    assert finished.status == expected
    assert finished.summary == {"documents": len(statuses)}
    assert finished.finished_at is not None
    assert store.finish_run(run.run_id, status="failed").status == "failed"


def test_list_runs_newest_first_with_counts(store: ResultStore):
    first = store.start_run("analyze", run_id="20260101T000000Z-aaaa")
    second = store.start_run("batch", run_id="20260102T000000Z-bbbb", manifest=manifest("a"))
    store.record_run_document(second.run_id, "a", "ok")

    runs = store.list_runs()

    assert [r.run_id for r in runs] == [second.run_id, first.run_id]
    assert runs[0].document_counts == {"ok": 1}
    assert [r.run_id for r in store.list_runs(kind="analyze")] == [first.run_id]
    assert len(store.list_runs(limit=1)) == 1


def test_recording_a_document_of_an_unknown_run_is_refused(store: ResultStore):
    with pytest.raises(StoreError, match="No run nope"):
        store.record_run_document("nope", "a.pdf", "ok")
    with pytest.raises(StoreError, match="No run nope"):
        store.finish_run("nope")


# --- reviews --------------------------------------------------------------------------------


def test_override_changes_the_current_label_and_keeps_history(store: ResultStore):
    result_id = store.save_result(make_result())
    assert store.current_labels(result_id) == {0: "positive", 1: "negative", 2: "neutral"}

    first = store.add_review(
        result_id,
        "override",
        "ann",
        sentence_index=1,
        label="neutral",
        comment="Boilerplate.",
        expected_previous=None,
    )
    second = store.add_review(
        result_id, "override", "bob", sentence_index=1, label="positive", expected_previous=first.id
    )

    assert (first.previous_label, first.label) == ("negative", "neutral")
    assert (second.previous_label, second.label) == ("neutral", "positive")
    assert (second.model_version, second.model_digest) == ("3", MODEL)
    assert second.doc_id == doc_id(0)
    assert store.current_labels(result_id) == {0: "positive", 1: "positive", 2: "neutral"}
    assert store.reviews(doc_id(0)) == [first, second]
    assert store.reviews(result_id=result_id, sentence_index=1) == [first, second]
    assert store.reviews(result_id=result_id, sentence_index=0) == []


def test_agree_records_the_label_in_force(store: ResultStore):
    result_id = store.save_result(make_result())
    override = store.add_review(
        result_id, "override", "ann", sentence_index=2, label="negative", expected_previous=None
    )

    agreed = store.add_review(
        result_id, "agree", "bob", sentence_index=2, expected_previous=override.id
    )

    assert (agreed.previous_label, agreed.label) == ("negative", "negative")
    assert store.current_labels(result_id)[2] == "negative"


def test_comments_and_signoffs_do_not_change_labels(store: ResultStore):
    result_id = store.save_result(make_result())
    comment = store.add_review(
        result_id,
        "comment",
        "ann",
        sentence_index=0,
        comment="Check against note 12.",
        expected_previous=None,
    )
    preparer = store.add_review(result_id, "signoff_preparer", "ann", expected_previous=comment.id)
    reviewer = store.add_review(result_id, "signoff_reviewer", "bob", expected_previous=preparer.id)

    assert store.current_labels(result_id) == {0: "positive", 1: "negative", 2: "neutral"}
    assert [r.action for r in store.reviews(doc_id(0))] == [
        "comment",
        "signoff_preparer",
        "signoff_reviewer",
    ]
    assert reviewer.sentence_index is None and reviewer.label is None


def test_review_of_a_stale_version_raises_a_conflict_carrying_the_other_action(store: ResultStore):
    result_id = store.save_result(make_result())
    ann = store.add_review(
        result_id, "override", "ann", sentence_index=0, label="negative", expected_previous=None
    )

    with pytest.raises(ReviewConflict) as conflict:
        store.add_review(result_id, "agree", "bob", sentence_index=0, expected_previous=None)

    assert conflict.value.current == ann
    assert "ann" in conflict.value.message and "not saved" in conflict.value.message
    assert store.reviews(result_id=result_id) == [ann]
    retried = store.add_review(
        result_id, "agree", "bob", sentence_index=0, expected_previous=conflict.value.current.id
    )
    assert retried.label == "negative"
    # Another sentence's history is its own: no conflict there.
    store.add_review(result_id, "agree", "bob", sentence_index=1, expected_previous=None)


def test_document_signoff_conflicts_with_a_later_sentence_review(store: ResultStore):
    result_id = store.save_result(make_result())
    seen = store.add_review(
        result_id, "comment", "ann", comment="Looks fine.", expected_previous=None
    )
    late = store.add_review(
        result_id, "override", "bob", sentence_index=2, label="negative", expected_previous=None
    )

    with pytest.raises(ReviewConflict) as conflict:
        store.add_review(result_id, "signoff_preparer", "ann", expected_previous=seen.id)

    assert conflict.value.current == late


def test_review_naming_an_unknown_previous_action_is_refused(store: ResultStore):
    result_id = store.save_result(make_result())

    with pytest.raises(StoreError, match="reload"):
        store.add_review(result_id, "agree", "ann", sentence_index=0, expected_previous=999)


@pytest.mark.parametrize(
    ("action", "kwargs", "message"),
    [
        ("override", {"sentence_index": 0}, "needs the new label"),
        ("override", {"label": "negative"}, "needs the sentence"),
        ("agree", {}, "needs the sentence"),
        ("agree", {"sentence_index": 0, "label": "negative"}, "Only an override sets a label"),
        ("comment", {"sentence_index": 0, "comment": "  "}, "needs its text"),
        ("signoff_reviewer", {"sentence_index": 0}, "whole document"),
        ("agree", {"sentence_index": 99}, "no sentence 99"),
    ],
)
def test_invalid_review_actions_are_refused(store: ResultStore, action, kwargs, message):
    result_id = store.save_result(make_result())

    with pytest.raises(StoreError, match=message):
        store.add_review(result_id, action, "ann", expected_previous=None, **kwargs)

    assert store.reviews(result_id=result_id) == []


def test_review_of_an_unknown_result_is_refused(store: ResultStore):
    with pytest.raises(StoreError, match="No reviewable result 42"):
        store.add_review(42, "comment", "ann", comment="x", expected_previous=None)


def test_agreeing_with_an_unscored_sentence_is_refused(store: ResultStore):
    result = make_result()
    result_id = store.save_result(result.model_copy(update={"scores": ()}))

    with pytest.raises(StoreError, match="no label to agree with"):
        store.add_review(result_id, "agree", "ann", sentence_index=0, expected_previous=None)


def test_review_actions_are_never_changed(store: ResultStore):
    result_id = store.save_result(make_result())
    history = []
    previous = None
    for reviewer, label in [("ann", "neutral"), ("bob", "negative"), ("cy", "positive")]:
        action = store.add_review(
            result_id,
            "override",
            reviewer,
            sentence_index=0,
            label=label,
            expected_previous=previous,
        )  # type: ignore[arg-type]
        history.append(action)
        previous = action.id

    assert store.reviews(result_id=result_id) == history
    assert [a.id for a in history] == sorted(a.id for a in history)
    assert count_rows(store, "reviews") == 3


# --- monitoring -----------------------------------------------------------------------------


def test_monitor_reports_are_kept_newest_first(store: ResultStore):
    first = store.add_monitor_report(
        "drift", {"psi": 0.12, "labels": {"negative": 0.3}}, model_digest=MODEL
    )
    second = store.add_monitor_report("drift", {"psi": 0.31})
    store.add_monitor_report("data_quality", {"empty_pages": 2}, run_id="r")

    drift = store.monitor_reports("drift")

    assert drift == [second, first]
    assert first.report == {"psi": 0.12, "labels": {"negative": 0.3}}
    assert len(store.monitor_reports()) == 3
    assert len(store.monitor_reports(limit=1)) == 1


# --- several threads and processes at once -------------------------------------------------


def test_one_store_serves_several_threads(store: ResultStore):
    # Streamlit runs each session's script in a thread of its own and shares cached objects.
    def save_and_load(n: int) -> bool:
        result_id = store.save_result(make_result(n))
        return store.load_result(result_id) == make_result(n)

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(save_and_load, range(8))) == [True] * 8
    assert len(store.list_results()) == 8


def in_processes(target: Callable[..., Any], args: list[tuple[Any, ...]]) -> list[Any]:
    """Run target(*a) for each a in a forked process of its own; returns what each returned."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()

    def runner(i: int, a: tuple[Any, ...]) -> None:
        try:
            out: Any = ("ok", target(*a))
        except BaseException as e:  # noqa: BLE001  (reported to the parent, which asserts)
            out = ("error", f"{type(e).__name__}: {e}")
        queue.put((i, out))
        queue.close()
        queue.join_thread()
        os._exit(0)  # skip pytest's and the inherited engines' cleanup in the child

    processes = [ctx.Process(target=runner, args=(i, a)) for i, a in enumerate(args)]
    for p in processes:
        p.start()
    results = dict(queue.get(timeout=120) for _ in processes)
    for p in processes:
        p.join(timeout=30)
    return [results[i] for i in range(len(args))]


def save_many(url: str, run_id: str, worker: int, n: int, barrier: Any) -> int:
    store = ResultStore(url, busy_timeout_s=60)
    barrier.wait()
    for k in range(n):
        number = worker * 100 + k
        source = f"/in/report-{number}.pdf"
        store.record_run_document(run_id, source, "running")
        result_id = store.save_result(make_result(number), run_id=run_id)
        store.record_run_document(run_id, source, "ok", doc_id=doc_id(number), result_id=result_id)
        store.add_monitor_report("progress", {"worker": worker, "k": k})
    store.dispose()
    return n


def test_concurrent_writers_in_several_processes_lose_nothing(store: ResultStore):
    workers, each = 4, 5
    run = store.start_run("batch")
    store.dispose()  # no pooled connection may be shared with the forked children
    barrier = mp.get_context("fork").Barrier(workers)

    outcomes = in_processes(
        save_many, [(store.url, run.run_id, w, each, barrier) for w in range(workers)]
    )

    assert outcomes == [("ok", each)] * workers
    assert len(store.list_results(run_id=run.run_id)) == workers * each
    documents = store.run_documents(run.run_id)
    assert len(documents) == workers * each
    assert {(d.status, d.attempts) for d in documents} == {("ok", 1)}
    assert store.finish_run(run.run_id).status == "ok"
    assert len(store.monitor_reports("progress")) == workers * each


def save_once(url: str, barrier: Any) -> int:
    store = ResultStore(url)
    barrier.wait()
    result_id = store.save_result(make_result(7))
    store.dispose()
    return result_id


def test_concurrent_saves_of_one_result_store_it_once(store: ResultStore):
    store.dispose()
    barrier = mp.get_context("fork").Barrier(3)

    outcomes = in_processes(save_once, [(store.url, barrier)] * 3)

    assert {status for status, _ in outcomes} == {"ok"}
    assert len({result_id for _, result_id in outcomes}) == 1
    assert count_rows(store, "results") == 1
    assert count_rows(store, "sentences") == 3


def review_at_once(url: str, result_id: int, reviewer: str, barrier: Any) -> str:
    store = ResultStore(url)
    barrier.wait()
    try:
        store.add_review(
            result_id,
            "override",
            reviewer,
            sentence_index=0,
            label="negative",
            expected_previous=None,
        )
        return "saved"
    except ReviewConflict as e:
        return f"conflict with {e.current.reviewer}"
    finally:
        store.dispose()


def test_concurrent_reviewers_of_one_sentence_exactly_one_wins(store: ResultStore):
    result_id = store.save_result(make_result())
    store.dispose()
    reviewers = ["ann", "bob", "cy", "dee"]
    barrier = mp.get_context("fork").Barrier(len(reviewers))

    outcomes = in_processes(review_at_once, [(store.url, result_id, r, barrier) for r in reviewers])

    saved = store.reviews(result_id=result_id)
    assert len(saved) == 1
    winner = saved[0].reviewer
    assert sorted(out for _, out in outcomes) == sorted(
        ["saved"] + [f"conflict with {winner}"] * (len(reviewers) - 1)
    )


def test_review_overview_counts_decided_sentences_and_sign_offs(store: ResultStore):
    reviewed = store.save_result(make_result(0))
    untouched = store.save_result(make_result(1))
    add = store.add_review
    first = add(reviewed, "agree", "ann", sentence_index=0, expected_previous=None)
    add(reviewed, "override", "bob", sentence_index=0, label="neutral", expected_previous=first.id)
    add(reviewed, "comment", "ann", sentence_index=1, comment="see note 4", expected_previous=None)
    last = add(
        reviewed, "override", "ann", sentence_index=2, label="negative", expected_previous=None
    )
    add(reviewed, "signoff_preparer", "ann", expected_previous=last.id)
    overview = store.review_overview([reviewed, untouched, 999])
    assert set(overview) == {reviewed, untouched, 999}
    done = overview[reviewed]
    # sentence 0 twice and sentence 2 decided; a comment is no decision
    assert (done.sentences_reviewed, done.actions, done.signed_off) == (2, 5, ("preparer",))
    assert done.last_action_at is not None
    assert overview[untouched].sentences_reviewed == 0 and overview[untouched].signed_off == ()
    assert store.review_overview([]) == {}
