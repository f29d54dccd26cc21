"""The results store: documents, analysis results, runs, reviews and monitoring reports.

One SQLAlchemy schema on two backends. The default is a SQLite file in the data directory, in
WAL mode with a busy timeout, so Ray workers, the CLI and the Streamlit app can write at once
(writers queue on SQLite's single write lock; readers never wait). A `postgresql+psycopg://` URL
moves the same schema to PostgreSQL when one machine is not enough.

What is kept:
- one row per (document, model digest, settings digest) analysis result, with its pages,
  sentences, scores, explanations and stage errors, so `load_result` returns the very
  `DocumentResult` that was saved;
- runs (analyze / batch) with their manifest, model stamp, settings, summary and one row per
  input with status, attempts, timings and error, so a batch resumes and `sesame batch status`
  can list runs and documents;
- review actions, append-only: a reviewer acts on the version they saw, and when another review
  landed in between the store raises `ReviewConflict` carrying that other action;
- monitoring reports as free-form JSON.

Schema changes: `create_schema` creates missing tables and never alters existing ones; the
schema version is kept in `store_meta`. A change to an existing table bumps `SCHEMA_VERSION`
and ships an Alembic migration (Alembic is installed with MLflow); until then an older or newer
database is refused with a message rather than half-used.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import event, exc
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from app.config import Settings
from app.errors import SesameError
from app.records import (
    LABELS,
    TONE_KINDS,
    Comparison,
    ComparisonSummary,
    Document,
    DocumentResult,
    Explanation,
    Label,
    ManifestEntry,
    MonitorReport,
    Page,
    ResultSummary,
    ReviewAction,
    ReviewKind,
    ReviewOverview,
    RunDocStatus,
    RunDocument,
    RunInfo,
    RunKind,
    RunStatus,
    Score,
    Sentence,
    Stage,
    StageError,
    Stamp,
    settings_digest,
)
from app.stamps import new_run_id

_log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
"""Bumped, with a migration in `_MIGRATIONS`, whenever an existing table changes."""

_SENTENCE_COLUMNS = frozenset(
    {"doc_id", "index", "page_no", "start", "end", "text", "kind", "section", "section_type"}
)
"""Sentence fields with a column of their own (queried, indexed); the rest live in `detail`."""
_PAGE_COLUMNS = frozenset({"page_no", "width", "height", "rotation", "status", "text"})
"""Page fields with a column of their own; the rest (lines, blocks, ...) live in `layout`."""

OnConflict = Literal["keep", "replace"]
"""What `save_result` does when the (document, model, settings) result is already stored."""

_TERMINAL: frozenset[str] = frozenset({"ok", "partial", "failed", "skipped"})
_SENTENCE_ACTIONS: frozenset[str] = frozenset({"agree", "override"})
_DOCUMENT_ACTIONS: frozenset[str] = frozenset(
    {
        "signoff_preparer",
        "signoff_reviewer",
        "signoff_preparer_exception",
        "signoff_reviewer_exception",
    }
)
_T = TypeVar("_T")
_PG_SCHEMA_LOCK = 0x5E5A3E  # advisory lock key: one create_schema at a time on PostgreSQL


class StoreError(SesameError):
    """The results store refused or could not do what was asked."""

    stage: Stage = "store"
    code = "store"


class ReviewConflict(StoreError):
    """Another review of the same sentence (or document) landed after the version you saw."""

    code = "review_conflict"

    def __init__(self, message: str, *, current: ReviewAction) -> None:
        super().__init__(message, fatal=False)
        self.current = current
        """The other reviewer's action, now the latest: show it, then let the reviewer retry."""


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite has no time zones)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Store UTC; naive datetimes are taken to be UTC already."""
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Read back as an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """The store's tables."""

    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: sa.JSON, list[Any]: sa.JSON}


class _Meta(Base):
    __tablename__ = "store_meta"
    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)


class _Document(Base):
    __tablename__ = "documents"
    doc_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    file_name: Mapped[str] = mapped_column(sa.Text)
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    n_pages: Mapped[int]
    encrypted: Mapped[bool]
    title: Mapped[str | None] = mapped_column(sa.Text)
    producer: Mapped[str | None] = mapped_column(sa.Text)
    first_seen: Mapped[datetime]


class _Result(Base):
    __tablename__ = "results"
    __table_args__ = (
        sa.UniqueConstraint("doc_key", "model_digest", "settings_digest", name="uq_result"),
        sa.Index("ix_results_client", "client", "engagement"),
    )
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    doc_key: Mapped[str] = mapped_column(sa.String(80))
    """The doc_id, or `source:<sha256 of the source>` when not even the bytes could be read."""
    doc_id: Mapped[str | None] = mapped_column(sa.ForeignKey("documents.doc_id"), index=True)
    source: Mapped[str] = mapped_column(sa.Text)
    file_name: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    model_digest: Mapped[str] = mapped_column(sa.String(64))
    settings_digest: Mapped[str] = mapped_column(sa.String(64))
    model_name: Mapped[str] = mapped_column(sa.Text)
    model_version: Mapped[str | None] = mapped_column(sa.Text)
    code_version: Mapped[str] = mapped_column(sa.Text)
    git_commit: Mapped[str | None] = mapped_column(sa.Text)
    stamp_run_id: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime]
    saved_at: Mapped[datetime]
    run_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    client: Mapped[str | None] = mapped_column(sa.Text)
    engagement: Mapped[str | None] = mapped_column(sa.Text)
    n_pages: Mapped[int]
    n_sentences: Mapped[int]
    n_scored: Mapped[int]
    n_explained: Mapped[int]
    n_errors: Mapped[int]
    n_positive: Mapped[int]
    n_negative: Mapped[int]
    n_neutral: Mapped[int]
    document: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON(none_as_null=True))
    settings: Mapped[dict[str, Any]]
    timings: Mapped[dict[str, Any]]


class _Error(Base):
    __tablename__ = "stage_errors"
    result_id: Mapped[int] = mapped_column(
        sa.ForeignKey("results.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    stage: Mapped[str] = mapped_column(sa.String(16))
    code: Mapped[str] = mapped_column(sa.String(64), index=True)
    page_no: Mapped[int | None]
    message: Mapped[str] = mapped_column(sa.Text)
    fatal: Mapped[bool]


class _Page(Base):
    __tablename__ = "pages"
    result_id: Mapped[int] = mapped_column(
        sa.ForeignKey("results.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    page_no: Mapped[int]
    width: Mapped[float] = mapped_column(sa.Double)
    height: Mapped[float] = mapped_column(sa.Double)
    rotation: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(16))
    text: Mapped[str] = mapped_column(sa.Text)
    layout: Mapped[dict[str, Any]]
    """Lines and blocks, as their records dump them."""


class _Sentence(Base):
    __tablename__ = "sentences"
    __table_args__ = (
        sa.Index("ix_sentences_page", "result_id", "page_no"),
        sa.Index("ix_sentences_section", "result_id", "section"),
        sa.Index("ix_sentences_section_type", "result_id", "section_type"),
        sa.Index("ix_sentences_doc", "doc_id"),
    )
    result_id: Mapped[int] = mapped_column(
        sa.ForeignKey("results.id", ondelete="CASCADE"), primary_key=True
    )
    sentence_index: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    doc_id: Mapped[str] = mapped_column(sa.String(64))
    page_no: Mapped[int]
    char_start: Mapped[int]
    char_end: Mapped[int]
    text: Mapped[str] = mapped_column(sa.Text)
    kind: Mapped[str] = mapped_column(sa.String(16))
    section: Mapped[str | None] = mapped_column(sa.Text)
    section_type: Mapped[str | None] = mapped_column(sa.String(64))
    boxes: Mapped[list[Any]]
    detail: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    """Every other field of the record, as it dumps them (added in schema version 2)."""


class _Score(Base):
    __tablename__ = "scores"
    __table_args__ = (sa.Index("ix_scores_label", "result_id", "label", "confidence"),)
    result_id: Mapped[int] = mapped_column(
        sa.ForeignKey("results.id", ondelete="CASCADE"), primary_key=True
    )
    sentence_index: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    label: Mapped[str] = mapped_column(sa.String(8))
    p_positive: Mapped[float | None] = mapped_column(sa.Double)
    p_negative: Mapped[float | None] = mapped_column(sa.Double)
    p_neutral: Mapped[float | None] = mapped_column(sa.Double)
    confidence: Mapped[float] = mapped_column(sa.Double)


class _Explanation(Base):
    __tablename__ = "explanations"
    result_id: Mapped[int] = mapped_column(
        sa.ForeignKey("results.id", ondelete="CASCADE"), primary_key=True
    )
    sentence_index: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    label: Mapped[str] = mapped_column(sa.String(8))
    base_value: Mapped[float] = mapped_column(sa.Double)
    output_value: Mapped[float] = mapped_column(sa.Double)
    additivity_error: Mapped[float] = mapped_column(sa.Double)
    model_digest: Mapped[str] = mapped_column(sa.String(64))
    cached: Mapped[bool]
    detail: Mapped[dict[str, Any]]
    """Words, values, top words and SHAP settings, as the record dumps them."""


class _Run(Base):
    __tablename__ = "runs"
    run_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16), index=True)
    status: Mapped[str] = mapped_column(sa.String(16))
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    manifest: Mapped[list[Any]]
    stamp: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON(none_as_null=True))
    settings: Mapped[dict[str, Any]]
    summary: Mapped[dict[str, Any]]


class _RunDocument(Base):
    __tablename__ = "run_documents"
    __table_args__ = (sa.Index("ix_run_documents_status", "run_id", "status"),)
    run_id: Mapped[str] = mapped_column(
        sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    )
    source: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    doc_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    status: Mapped[str] = mapped_column(sa.String(16))
    attempts: Mapped[int]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    timings: Mapped[dict[str, Any]]
    error: Mapped[str | None] = mapped_column(sa.Text)
    result_id: Mapped[int | None] = mapped_column(sa.ForeignKey("results.id", ondelete="SET NULL"))


class _Review(Base):
    __tablename__ = "reviews"
    __table_args__ = (sa.Index("ix_reviews_target", "result_id", "sentence_index", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    result_id: Mapped[int] = mapped_column(sa.ForeignKey("results.id"))
    doc_id: Mapped[str] = mapped_column(sa.ForeignKey("documents.doc_id"), index=True)
    sentence_index: Mapped[int | None]
    action: Mapped[str] = mapped_column(sa.String(32))
    reviewer: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime]
    label: Mapped[str | None] = mapped_column(sa.String(8))
    previous_label: Mapped[str | None] = mapped_column(sa.String(8))
    comment: Mapped[str | None] = mapped_column(sa.Text)
    model_version: Mapped[str | None] = mapped_column(sa.Text)
    model_digest: Mapped[str] = mapped_column(sa.String(64))


class _MonitorReport(Base):
    __tablename__ = "monitor_reports"
    __table_args__ = (sa.Index("ix_monitor_reports_kind", "kind", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime]
    model_digest: Mapped[str | None] = mapped_column(sa.String(64))
    run_id: Mapped[str | None] = mapped_column(sa.String(64))
    report: Mapped[dict[str, Any]]


class _Comparison(Base):
    """A year-against-year comparison (`app.compare`): its summary columns and the whole record."""

    __tablename__ = "comparisons"
    __table_args__ = (
        sa.UniqueConstraint(
            "prior_result_id", "current_result_id", "settings_digest", name="uq_comparison"
        ),
        sa.Index("ix_comparisons_client", "client", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    prior_result_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("results.id", ondelete="SET NULL"), index=True
    )
    current_result_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("results.id", ondelete="SET NULL"), index=True
    )
    prior_doc_id: Mapped[str | None] = mapped_column(sa.String(64))
    current_doc_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    prior_file_name: Mapped[str | None] = mapped_column(sa.Text)
    current_file_name: Mapped[str | None] = mapped_column(sa.Text)
    client: Mapped[str | None] = mapped_column(sa.Text)
    prior_engagement: Mapped[str | None] = mapped_column(sa.Text)
    current_engagement: Mapped[str | None] = mapped_column(sa.Text)
    model_digest: Mapped[str] = mapped_column(sa.String(64))
    model_version: Mapped[str | None] = mapped_column(sa.Text)
    settings_digest: Mapped[str] = mapped_column(sa.String(64))
    run_id: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime]
    counts: Mapped[dict[str, Any]]
    moved_sections: Mapped[int]
    body: Mapped[dict[str, Any]]
    """The `Comparison` record as it dumps to JSON."""


def _add_sentence_detail(op: Operations) -> None:
    """1 -> 2: sentences keep every record field beyond their columns in `detail` (JSON)."""
    op.add_column("sentences", sa.Column("detail", sa.JSON, nullable=True))


_MIGRATIONS: dict[int, Callable[[Operations], None]] = {1: _add_sentence_detail}
"""Schema version -> the Alembic operations that take a store to the next version."""


def _json_dumps(value: Any) -> str:
    # NaN is not JSON: PostgreSQL refuses it, so SQLite must too, or a result that saves on a
    # laptop fails on the server.
    return json.dumps(value, allow_nan=False)


def _now() -> datetime:
    return datetime.now(UTC)


class ResultStore:
    """Documents, results, runs, reviews and monitoring reports behind one SQLAlchemy URL.

    Safe to use from several processes at once; each process builds its own store (a store
    pickles as its URL, so handing one to a Ray task or a multiprocessing child works).
    """

    def __init__(self, url: str, *, busy_timeout_s: float = 60.0) -> None:
        self.url = url
        self.busy_timeout_s = busy_timeout_s
        parsed = sa.make_url(url)
        self.backend = parsed.get_backend_name()
        if self.backend not in ("sqlite", "postgresql"):
            raise StoreError(
                f"Unsupported results-store URL {parsed.render_as_string()}: use a sqlite:/// "
                "file or a postgresql+psycopg:// URL."
            )
        if self.backend == "sqlite":
            self._engine = self._sqlite_engine(parsed)
        else:
            self._engine = sa.create_engine(parsed, pool_pre_ping=True, json_serializer=_json_dumps)

    def _sqlite_engine(self, url: sa.URL) -> sa.Engine:
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"timeout": self.busy_timeout_s}, json_serializer=_json_dumps
        )
        busy_ms = int(self.busy_timeout_s * 1000)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # sqlite3's own BEGIN handling is switched off so that ours (below) is the only one.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")  # durable enough in WAL, much faster
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            # A write transaction takes the write lock up front (IMMEDIATE): a deferred one that
            # read first and writes later fails at once with "database is locked" when another
            # process wrote meanwhile, instead of waiting out the busy timeout.
            write = conn.get_execution_options().get("sesame_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    @classmethod
    def from_settings(cls, settings: Settings) -> ResultStore:
        """The store the settings name (a SQLite file in the data directory by default), ready."""
        store = cls(settings.store_url())
        store.create_schema()
        return store

    def __reduce__(self) -> tuple[Any, ...]:
        # Engines and their connections do not cross processes: a copy opens its own.
        return (_reopen, (self.url, self.busy_timeout_s))

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.dispose()

    def dispose(self) -> None:
        """Close pooled connections (call before forking, or when done)."""
        self._engine.dispose()

    def __repr__(self) -> str:
        return f"ResultStore({sa.make_url(self.url).render_as_string()!r})"

    # --- transactions -------------------------------------------------------------------

    @contextlib.contextmanager
    def _session(self, *, write: bool) -> Iterator[Session]:
        with self._engine.connect() as conn:
            if write:
                conn = conn.execution_options(sesame_write=True)
            elif self.backend == "postgresql":
                # Several SELECTs of one read see one snapshot, as in SQLite's WAL.
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            try:
                with Session(bind=conn, expire_on_commit=False) as session, session.begin():
                    yield session
            except exc.OperationalError as e:
                if "database is locked" in str(e):
                    raise StoreError(
                        f"The results store stayed locked for over {self.busy_timeout_s:.0f} s "
                        "(another process holds the write lock). Retry, or point the store at "
                        "PostgreSQL for heavier concurrent use."
                    ) from e
                raise

    def _write(self, work: Callable[[Session], _T], *, attempts: int = 3) -> _T:
        """Run `work` in a write transaction; a unique-key race with another writer is retried.

        Two writers inserting the same key at once (possible on PostgreSQL, whose transactions
        do not queue on one lock as SQLite's do) make the later one fail; its retry then sees
        the committed row.
        """
        for attempt in range(1, attempts + 1):
            try:
                with self._session(write=True) as session:
                    return work(session)
            except exc.IntegrityError as e:
                if attempt == attempts or "unique" not in str(e.orig).lower():
                    raise
                _log.debug("write raced another writer; retrying (attempt %d)", attempt + 1)
        raise AssertionError("unreachable")

    # --- schema -------------------------------------------------------------------------

    def create_schema(self) -> None:
        """Create missing tables (idempotent) and refuse a database of another schema version."""
        with self._session(write=True) as session:
            if self.backend == "postgresql":
                session.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK)))
            Base.metadata.create_all(session.connection())
            stored = session.get(_Meta, "schema_version")
            if stored is None:
                session.add(_Meta(key="schema_version", value=str(SCHEMA_VERSION)))
                return
            while stored.value.isdigit() and int(stored.value) in _MIGRATIONS:
                _log.warning("results store: migrating schema version %s", stored.value)
                _MIGRATIONS[int(stored.value)](
                    Operations(MigrationContext.configure(session.connection()))
                )
                stored.value = str(int(stored.value) + 1)
            if stored.value != str(SCHEMA_VERSION):
                raise StoreError(
                    f"The results store at {sa.make_url(self.url).render_as_string()} has "
                    f"schema version {stored.value}; this sesame uses {SCHEMA_VERSION}. "
                    "Run the matching migration, or use a fresh store URL."
                )

    # --- results ------------------------------------------------------------------------

    def save_result(
        self, result: DocumentResult, *, run_id: str | None = None, on_conflict: OnConflict = "keep"
    ) -> int:
        """Store a result in one transaction; returns its id.

        Saving a (document, model digest, settings digest) that is already stored changes
        nothing and returns the stored id (`on_conflict="keep"`); `"replace"` rewrites it in
        place, which is refused once the result has reviews.
        """
        _check_unique(result)
        digest = settings_digest(result.settings)
        key = _doc_key(result)

        def work(session: Session) -> int:
            existing = session.scalar(
                sa.select(_Result).where(
                    _Result.doc_key == key,
                    _Result.model_digest == result.stamp.model_digest,
                    _Result.settings_digest == digest,
                )
            )
            if existing is not None and on_conflict == "keep":
                return existing.id
            if result.document is not None:
                self._ensure_document(session, result.document)
            row_values = _result_row(result, key=key, settings_digest=digest, run_id=run_id)
            if existing is None:
                row = _Result(**row_values)
                session.add(row)
                session.flush()
            else:
                reviewed = session.scalar(
                    sa.select(sa.func.count()).where(_Review.result_id == existing.id)
                )
                if reviewed:
                    raise StoreError(
                        f"{result.source}: the stored result has {reviewed} review actions and "
                        "cannot be replaced; analyze with other settings or keep it."
                    )
                row = existing
                for name, value in row_values.items():
                    setattr(row, name, value)
                for table in (_Error, _Page, _Sentence, _Score, _Explanation):
                    session.execute(sa.delete(table).where(table.result_id == row.id))
            self._insert_children(session, row.id, result)
            return row.id

        return self._write(work)

    def _ensure_document(self, session: Session, document: Document) -> None:
        insert = _dialect_insert(self.backend)(_Document).values(
            doc_id=document.doc_id,
            file_name=document.file_name,
            size_bytes=document.size_bytes,
            n_pages=document.n_pages,
            encrypted=document.encrypted,
            title=document.title,
            producer=document.producer,
            first_seen=_now(),
        )
        session.execute(insert.on_conflict_do_nothing(index_elements=["doc_id"]))

    def _insert_children(self, session: Session, result_id: int, result: DocumentResult) -> None:
        rows: list[tuple[type[Base], list[dict[str, Any]]]] = [
            (_Error, [_error_row(result_id, i, e) for i, e in enumerate(result.errors)]),
            (_Page, [_page_row(result_id, i, p) for i, p in enumerate(result.pages)]),
            (_Sentence, [_sentence_row(result_id, s) for s in result.sentences]),
            (_Score, [_score_row(result_id, s) for s in result.scores]),
            (_Explanation, [_explanation_row(result_id, e) for e in result.explanations]),
        ]
        for table, values in rows:
            if values:
                session.execute(sa.insert(table), values)

    def has_result(
        self,
        doc_id: str,
        model_digest: str,
        settings_digest: str,
        *,
        statuses: Iterable[str] = ("ok", "partial", "failed"),
    ) -> bool:
        """Whether this document was already analyzed with this model and these settings."""
        with self._session(write=False) as session:
            found = session.scalar(
                sa.select(_Result.id).where(
                    _Result.doc_key == doc_id,
                    _Result.model_digest == model_digest,
                    _Result.settings_digest == settings_digest,
                    _Result.status.in_(list(statuses)),
                )
            )
        return found is not None

    def add_explanations(self, result_id: int, explanations: Sequence[Explanation]) -> int:
        """Add SHAP evidence computed later (on demand) to a stored result; returns how many
        were new. Evidence already stored for a sentence is kept, never replaced, and must come
        from the model that scored the result."""
        with self._session(write=True) as session:
            row = session.get(_Result, result_id)
            if row is None:
                raise StoreError(f"no result {result_id}")
            wrong = [e.sentence_index for e in explanations if e.model_digest != row.model_digest]
            if wrong:
                raise StoreError(
                    f"result {result_id} was scored by model {row.model_digest[:12]}"
                    f"…; evidence for sentence {wrong[0]} comes from another model."
                )
            have = set(
                session.scalars(
                    sa.select(_Explanation.sentence_index).where(
                        _Explanation.result_id == result_id
                    )
                )
            )
            new: dict[int, Explanation] = {}
            for e in explanations:  # the first of several for one sentence, as for stored ones
                if e.sentence_index not in have:
                    new.setdefault(e.sentence_index, e)
            if new:
                session.execute(
                    sa.insert(_Explanation), [_explanation_row(result_id, e) for e in new.values()]
                )
                row.n_explained = len(have) + len(new)
            return len(new)

    def load_result(
        self,
        result_id: int | None = None,
        *,
        doc_id: str | None = None,
        model_digest: str | None = None,
        settings_digest: str | None = None,
    ) -> DocumentResult | None:
        """A stored result by id, or the latest one of a document (optionally of one model)."""
        with self._session(write=False) as session:
            row = self._find_result(session, result_id, doc_id, model_digest, settings_digest)
            if row is None:
                return None
            return _load(session, row)

    def result_id(
        self, doc_id: str, model_digest: str | None = None, settings_digest: str | None = None
    ) -> int | None:
        """The id of the latest stored result of a document (optionally of one model)."""
        found = self.result_key(doc_id, model_digest, settings_digest)
        return found[0] if found else None

    def result_key(
        self, doc_id: str, model_digest: str | None = None, settings_digest: str | None = None
    ) -> tuple[int, str, int] | None:
        """(id, status, review actions) of the latest stored result of a document (optionally
        of one model and settings): what the run service needs to reuse it or analyze again."""
        with self._session(write=False) as session:
            row = self._find_result(session, None, doc_id, model_digest, settings_digest)
            if row is None:
                return None
            n_reviews = session.scalar(
                sa.select(sa.func.count()).where(_Review.result_id == row.id)
            )
            return row.id, row.status, int(n_reviews or 0)

    @staticmethod
    def _find_result(
        session: Session,
        result_id: int | None,
        doc_id: str | None,
        model_digest: str | None,
        settings_digest: str | None,
    ) -> _Result | None:
        if result_id is not None:
            return session.get(_Result, result_id)
        if doc_id is None:
            raise ValueError("load a result by result_id or by doc_id")
        query = sa.select(_Result).where(_Result.doc_key == doc_id)
        if model_digest is not None:
            query = query.where(_Result.model_digest == model_digest)
        if settings_digest is not None:
            query = query.where(_Result.settings_digest == settings_digest)
        return session.scalar(query.order_by(_Result.id.desc()).limit(1))

    def list_results(
        self,
        *,
        doc_id: str | None = None,
        client: str | None = None,
        engagement: str | None = None,
        status: str | None = None,
        run_id: str | None = None,
        model_digest: str | None = None,
        limit: int | None = None,
    ) -> list[ResultSummary]:
        """Stored results without their sentences, newest first (the UI's document list)."""
        query = sa.select(_Result).order_by(_Result.id.desc())
        for column, value in (
            (_Result.doc_id, doc_id),
            (_Result.client, client),
            (_Result.engagement, engagement),
            (_Result.status, status),
            (_Result.run_id, run_id),
            (_Result.model_digest, model_digest),
        ):
            if value is not None:
                query = query.where(column == value)
        with self._session(write=False) as session:
            return [_summary(row) for row in session.scalars(query.limit(limit))]

    def list_documents(
        self, *, client: str | None = None, engagement: str | None = None
    ) -> list[Document]:
        """Documents with a stored result (of a client/engagement), by file name.

        A document is its bytes: saved again under another name, it keeps the first name (each
        result keeps its own source and file name).
        """
        query = sa.select(_Document).order_by(_Document.file_name, _Document.doc_id)
        if client is not None or engagement is not None:
            owned = sa.select(_Result.doc_id)
            if client is not None:
                owned = owned.where(_Result.client == client)
            if engagement is not None:
                owned = owned.where(_Result.engagement == engagement)
            query = query.where(_Document.doc_id.in_(owned))
        with self._session(write=False) as session:
            return [
                Document(
                    doc_id=d.doc_id,
                    file_name=d.file_name,
                    size_bytes=d.size_bytes,
                    n_pages=d.n_pages,
                    encrypted=d.encrypted,
                    title=d.title,
                    producer=d.producer,
                )
                for d in session.scalars(query)
            ]

    def sentences(
        self,
        result_id: int,
        *,
        label: Label | None = None,
        page_no: int | None = None,
        section: str | None = None,
        section_type: str | None = None,
        min_confidence: float | None = None,
    ) -> list[tuple[Sentence, Score | None]]:
        """A result's sentences with their scores, filtered as the review screen filters them.

        `label` and `min_confidence` filter on the model's score; reviewers' overrides are in
        `current_labels`.
        """
        query = (
            sa.select(_Sentence, _Score)
            .outerjoin(
                _Score,
                sa.and_(
                    _Score.result_id == _Sentence.result_id,
                    _Score.sentence_index == _Sentence.sentence_index,
                ),
            )
            .where(_Sentence.result_id == result_id)
            .order_by(_Sentence.sentence_index)
        )
        if label is not None:
            query = query.where(_Score.label == label)
        if min_confidence is not None:
            query = query.where(_Score.confidence >= min_confidence)
        if page_no is not None:
            query = query.where(_Sentence.page_no == page_no)
        if section is not None:
            query = query.where(_Sentence.section == section)
        if section_type is not None:
            query = query.where(_Sentence.section_type == section_type)
        with self._session(write=False) as session:
            return [
                (_sentence(s), _score(sc) if sc is not None else None)
                for s, sc in session.execute(query)
            ]

    # --- runs ---------------------------------------------------------------------------

    def start_run(
        self,
        kind: RunKind,
        *,
        run_id: str | None = None,
        manifest: Sequence[ManifestEntry] = (),
        stamp: Stamp | None = None,
        settings: dict[str, Any] | None = None,
    ) -> RunInfo:
        """Open a run, listing its inputs as pending; an existing run id resumes that run.

        On resume the documents already recorded keep their status and attempts; new manifest
        entries are added as pending, and a given manifest, stamp or settings replace the old.
        """
        run_id = run_id or new_run_id()
        manifest_data = [m.model_dump(mode="json") for m in manifest]

        def work(session: Session) -> RunInfo:
            run = session.get(_Run, run_id, with_for_update=True)
            if run is None:
                run = _Run(
                    run_id=run_id,
                    kind=kind,
                    status="running",
                    started_at=_now(),
                    finished_at=None,
                    manifest=manifest_data,
                    stamp=stamp.model_dump(mode="json") if stamp else None,
                    settings=settings or {},
                    summary={},
                )
                session.add(run)
                session.flush()
            else:
                if run.kind != kind:
                    raise StoreError(f"Run {run_id} is a {run.kind} run, not a {kind} run.")
                run.status, run.finished_at = "running", None
                if manifest_data:
                    run.manifest = manifest_data
                if stamp is not None:
                    run.stamp = stamp.model_dump(mode="json")
                if settings is not None:
                    run.settings = settings
            known = set(
                session.scalars(sa.select(_RunDocument.source).where(_RunDocument.run_id == run_id))
            )
            pending: list[dict[str, Any]] = [
                dict(
                    run_id=run_id,
                    source=m.path,
                    doc_id=None,
                    status="pending",
                    attempts=0,
                    started_at=None,
                    finished_at=None,
                    timings={},
                    error=None,
                    result_id=None,
                )
                for m in _unique_paths(manifest)
                if m.path not in known
            ]
            if pending:
                session.execute(sa.insert(_RunDocument), pending)
            return _run_info(run, _document_counts(session, run_id))

        return self._write(work)

    def record_run_document(
        self,
        run_id: str,
        source: str,
        status: RunDocStatus,
        *,
        doc_id: str | None = None,
        timings: dict[str, float] | None = None,
        error: str | None = None,
        result_id: int | None = None,
    ) -> RunDocument:
        """Record an input's progress in a run.

        "running" starts an attempt; a final status (ok, partial, failed) ends one, and counts
        as an attempt of its own when no "running" preceded it. "skipped" (already analyzed)
        is no attempt. A final status replaces the error and timings of earlier attempts.
        """

        def work(session: Session) -> RunDocument:
            row = session.get(_RunDocument, (run_id, source), with_for_update=True)
            if row is None:
                if session.get(_Run, run_id) is None:
                    raise StoreError(f"No run {run_id}: start it with start_run first.")
                row = _RunDocument(
                    run_id=run_id,
                    source=source,
                    doc_id=None,
                    status="pending",
                    attempts=0,
                    started_at=None,
                    finished_at=None,
                    timings={},
                    error=None,
                    result_id=None,
                )
                session.add(row)
            now = _now()
            if status == "running":
                row.attempts += 1
                row.started_at, row.finished_at = now, None
            elif status in _TERMINAL:
                if status != "skipped" and row.status != "running":
                    row.attempts += 1
                    row.started_at = now
                row.finished_at = now
                row.error = error
                row.timings = dict(timings or {})
            row.status = status
            if doc_id is not None:
                row.doc_id = doc_id
            if result_id is not None:
                row.result_id = result_id
            session.flush()
            return _run_document(row)

        return self._write(work)

    def finish_run(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        summary: dict[str, Any] | None = None,
    ) -> RunInfo:
        """Close a run; without a status it follows from its documents.

        Unfinished documents make it interrupted, all failed makes it failed, any failed or
        partial makes it partial, otherwise ok.
        """
        with self._session(write=True) as session:
            run = session.get(_Run, run_id, with_for_update=True)
            if run is None:
                raise StoreError(f"No run {run_id} to finish.")
            counts = _document_counts(session, run_id)
            run.status = status or _run_status(counts)
            run.finished_at = _now()
            if summary is not None:
                run.summary = summary
            session.flush()
            return _run_info(run, counts)

    def get_run(self, run_id: str) -> RunInfo | None:
        """One run with its document counts, or None."""
        with self._session(write=False) as session:
            run = session.get(_Run, run_id)
            return _run_info(run, _document_counts(session, run_id)) if run else None

    def list_runs(self, *, kind: RunKind | None = None, limit: int = 50) -> list[RunInfo]:
        """Runs, newest first, with their document counts."""
        query = sa.select(_Run).order_by(_Run.started_at.desc(), _Run.run_id.desc())
        if kind is not None:
            query = query.where(_Run.kind == kind)
        with self._session(write=False) as session:
            runs = list(session.scalars(query.limit(limit)))
            counts = _document_counts(session, [r.run_id for r in runs])
            return [_run_info(r, counts.get(r.run_id, {})) for r in runs]

    def run_documents(
        self, run_id: str, *, statuses: Iterable[RunDocStatus] | None = None
    ) -> list[RunDocument]:
        """A run's inputs and their progress, by source path."""
        query = (
            sa.select(_RunDocument)
            .where(_RunDocument.run_id == run_id)
            .order_by(_RunDocument.source)
        )
        if statuses is not None:
            query = query.where(_RunDocument.status.in_(list(statuses)))
        with self._session(write=False) as session:
            return [_run_document(r) for r in session.scalars(query)]

    # --- reviews ------------------------------------------------------------------------

    def add_review(
        self,
        result_id: int,
        action: ReviewKind,
        reviewer: str,
        *,
        expected_previous: int | None,
        sentence_index: int | None = None,
        label: Label | None = None,
        comment: str | None = None,
    ) -> ReviewAction:
        """Append a review action, unless another landed after the version the reviewer saw.

        `expected_previous` is the id of the latest action the reviewer saw for the sentence
        (for a whole-document action: the latest action on any part of the result), or None
        when they saw none. When it is no longer the latest, nothing is written and
        `ReviewConflict` carries the other action.
        """
        _check_review(action, sentence_index, label, comment)
        with self._session(write=True) as session:
            # The row lock serialises reviewers of one result on PostgreSQL; SQLite's
            # IMMEDIATE transaction already holds the database's only write lock.
            result = session.get(_Result, result_id, with_for_update=True)
            if result is None or result.doc_id is None:
                raise StoreError(f"No reviewable result {result_id} in the store.")
            target = sa.select(_Review).where(_Review.result_id == result_id)
            if sentence_index is not None:
                target = target.where(_Review.sentence_index == sentence_index)
            latest = session.scalar(target.order_by(_Review.id.desc()).limit(1))
            if (latest.id if latest else None) != expected_previous:
                if latest is None:
                    raise StoreError(
                        f"Review {expected_previous} is not on result {result_id}"
                        + (f" sentence {sentence_index}" if sentence_index is not None else "")
                        + "; reload the review screen."
                    )
                other = _review(latest)
                where = (
                    f"sentence {sentence_index}" if sentence_index is not None else "this document"
                )
                raise ReviewConflict(
                    f"{other.reviewer} recorded '{other.action}' on {where} at "
                    f"{other.created_at:%Y-%m-%d %H:%M:%S} UTC after the version you saw. "
                    "Your action was not saved: review their change and act again.",
                    current=other,
                )
            previous: str | None = None
            if sentence_index is not None:
                previous = self._current_label(session, result_id, sentence_index)
                if action == "agree":
                    if previous is None:
                        raise StoreError(
                            f"Sentence {sentence_index} of result {result_id} has no label "
                            "to agree with."
                        )
                    label = previous  # type: ignore[assignment]
            row = _Review(
                result_id=result_id,
                doc_id=result.doc_id,
                sentence_index=sentence_index,
                action=action,
                reviewer=reviewer,
                created_at=_now(),
                label=label,
                previous_label=previous,
                comment=comment,
                model_version=result.model_version,
                model_digest=result.model_digest,
            )
            session.add(row)
            session.flush()
            return _review(row)

    @staticmethod
    def _current_label(session: Session, result_id: int, sentence_index: int) -> str | None:
        exists = session.get(_Sentence, (result_id, sentence_index))
        if exists is None:
            raise StoreError(f"Result {result_id} has no sentence {sentence_index}.")
        reviewed = session.scalar(
            sa.select(_Review.label)
            .where(
                _Review.result_id == result_id,
                _Review.sentence_index == sentence_index,
                _Review.action.in_(list(_SENTENCE_ACTIONS)),
            )
            .order_by(_Review.id.desc())
            .limit(1)
        )
        if reviewed is not None:
            return reviewed
        return session.scalar(
            sa.select(_Score.label).where(
                _Score.result_id == result_id, _Score.sentence_index == sentence_index
            )
        )

    def reviews(
        self,
        doc_id: str | None = None,
        *,
        result_id: int | None = None,
        sentence_index: int | None = None,
    ) -> list[ReviewAction]:
        """Review actions of a document or result (optionally one sentence), oldest first."""
        if doc_id is None and result_id is None:
            raise ValueError("reviews of a doc_id or a result_id")
        query = sa.select(_Review).order_by(_Review.id)
        if doc_id is not None:
            query = query.where(_Review.doc_id == doc_id)
        if result_id is not None:
            query = query.where(_Review.result_id == result_id)
        if sentence_index is not None:
            query = query.where(_Review.sentence_index == sentence_index)
        with self._session(write=False) as session:
            return [_review(r) for r in session.scalars(query)]

    def review_overview(self, result_ids: Sequence[int]) -> dict[int, ReviewOverview]:
        """Where the review of each of these results stands (decided sentences, sign-offs), in
        one query: every result asked about has an entry, reviewed or not."""
        out = {rid: ReviewOverview(result_id=rid) for rid in result_ids}
        if not out:
            return out
        decided: dict[int, set[int]] = {}
        signed: dict[int, list[str]] = {}
        counts: dict[int, int] = {}
        last: dict[int, datetime] = {}
        query = (
            sa.select(_Review.result_id, _Review.sentence_index, _Review.action, _Review.created_at)
            .where(_Review.result_id.in_(list(out)))
            .order_by(_Review.id)
        )
        with self._session(write=False) as session:
            for rid, index, action, created_at in session.execute(query):
                counts[rid] = counts.get(rid, 0) + 1
                last[rid] = created_at
                if action in ("agree", "override") and index is not None:
                    decided.setdefault(rid, set()).add(index)
                elif action.startswith("signoff_"):
                    role = action.removeprefix("signoff_")
                    roles = signed.setdefault(rid, [])
                    if role not in roles:
                        roles.append(role)
        for rid in counts:
            out[rid] = ReviewOverview(
                result_id=rid,
                sentences_reviewed=len(decided.get(rid, ())),
                actions=counts[rid],
                signed_off=tuple(signed.get(rid, ())),
                last_action_at=last.get(rid),
            )
        return out

    def current_labels(self, result_id: int) -> dict[int, Label]:
        """Each scored or reviewed sentence's label in force: the latest agree/override, else
        the model's."""
        with self._session(write=False) as session:
            scored = session.execute(
                sa.select(_Score.sentence_index, _Score.label).where(_Score.result_id == result_id)
            )
            labels: dict[int, str] = {index: label for index, label in scored}
            for index, label in session.execute(
                sa.select(_Review.sentence_index, _Review.label)
                .where(_Review.result_id == result_id, _Review.action.in_(list(_SENTENCE_ACTIONS)))
                .order_by(_Review.id)
            ):
                if index is not None and label is not None:
                    labels[index] = label
        return dict(sorted(labels.items()))  # type: ignore[arg-type]

    # --- comparisons --------------------------------------------------------------------

    def save_comparison(self, comparison: Comparison) -> int:
        """Store a comparison; one of the same two results and options is replaced. Its id."""
        digest = settings_digest(comparison.settings)
        values = dict(
            prior_result_id=comparison.prior.result_id,
            current_result_id=comparison.current.result_id,
            prior_doc_id=comparison.prior.doc_id,
            current_doc_id=comparison.current.doc_id,
            prior_file_name=comparison.prior.file_name,
            current_file_name=comparison.current.file_name,
            client=comparison.current.client or comparison.prior.client,
            prior_engagement=comparison.prior.engagement,
            current_engagement=comparison.current.engagement,
            model_digest=comparison.stamp.model_digest,
            model_version=comparison.stamp.model_version,
            settings_digest=digest,
            run_id=comparison.stamp.run_id,
            created_at=comparison.stamp.created_at,
            counts=dict(comparison.counts),
            moved_sections=sum(1 for s in comparison.sections if s.moved),
            body=comparison.model_dump(mode="json", exclude_defaults=True),
        )

        def work(session: Session) -> int:
            existing = None
            if comparison.prior.result_id is not None and comparison.current.result_id is not None:
                existing = session.scalar(
                    sa.select(_Comparison).where(
                        _Comparison.prior_result_id == comparison.prior.result_id,
                        _Comparison.current_result_id == comparison.current.result_id,
                        _Comparison.settings_digest == digest,
                    )
                )
            if existing is None:
                row = _Comparison(**values)
                session.add(row)
            else:
                row = existing
                for name, value in values.items():
                    setattr(row, name, value)
            session.flush()
            return row.id

        return self._write(work)

    def load_comparison(self, comparison_id: int) -> Comparison | None:
        """A stored comparison, whole."""
        with self._session(write=False) as session:
            row = session.get(_Comparison, comparison_id)
            return Comparison.model_validate(row.body) if row is not None else None

    def list_comparisons(
        self,
        *,
        client: str | None = None,
        result_id: int | None = None,
        doc_id: str | None = None,
        limit: int | None = 200,
    ) -> list[ComparisonSummary]:
        """Stored comparisons (of a client, or with a result or document on either side),
        newest first."""
        query = sa.select(_Comparison).order_by(_Comparison.id.desc())
        if client is not None:
            query = query.where(_Comparison.client == client)
        if result_id is not None:
            query = query.where(
                sa.or_(
                    _Comparison.prior_result_id == result_id,
                    _Comparison.current_result_id == result_id,
                )
            )
        if doc_id is not None:
            query = query.where(
                sa.or_(_Comparison.prior_doc_id == doc_id, _Comparison.current_doc_id == doc_id)
            )
        with self._session(write=False) as session:
            return [_comparison_summary(r) for r in session.scalars(query.limit(limit))]

    # --- monitoring ---------------------------------------------------------------------

    def add_monitor_report(
        self,
        kind: str,
        report: dict[str, Any],
        *,
        model_digest: str | None = None,
        run_id: str | None = None,
    ) -> MonitorReport:
        """Store a monitoring report (JSON-serialisable)."""
        with self._session(write=True) as session:
            row = _MonitorReport(
                kind=kind,
                created_at=_now(),
                model_digest=model_digest,
                run_id=run_id,
                report=report,
            )
            session.add(row)
            session.flush()
            return _monitor_report(row)

    def monitor_reports(self, kind: str | None = None, *, limit: int = 100) -> list[MonitorReport]:
        """Stored monitoring reports, newest first."""
        query = sa.select(_MonitorReport).order_by(_MonitorReport.id.desc()).limit(limit)
        if kind is not None:
            query = query.where(_MonitorReport.kind == kind)
        with self._session(write=False) as session:
            return [_monitor_report(r) for r in session.scalars(query)]


def _reopen(url: str, busy_timeout_s: float) -> ResultStore:
    return ResultStore(url, busy_timeout_s=busy_timeout_s)


# --- rows <-> records -----------------------------------------------------------------------


def _dialect_insert(backend: str) -> Any:
    """The backend's INSERT, which knows ON CONFLICT (same API on both)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return postgresql.insert if backend == "postgresql" else sqlite.insert


def _doc_key(result: DocumentResult) -> str:
    if result.document is not None:
        return result.document.doc_id
    import hashlib

    return "source:" + hashlib.sha256(result.source.encode()).hexdigest()


def _check_unique(result: DocumentResult) -> None:
    for what, indexes in (
        ("sentence", [s.index for s in result.sentences]),
        ("score", [s.sentence_index for s in result.scores]),
        ("explanation", [e.sentence_index for e in result.explanations]),
    ):
        repeated = [i for i, n in Counter(indexes).items() if n > 1]
        if repeated:
            raise StoreError(
                f"{result.source}: more than one {what} for sentence index {repeated[0]}; "
                "the result is malformed and was not stored."
            )


def _unique_paths(manifest: Sequence[ManifestEntry]) -> list[ManifestEntry]:
    seen: dict[str, ManifestEntry] = {}
    for entry in manifest:
        seen.setdefault(entry.path, entry)
    return list(seen.values())


def _result_row(
    result: DocumentResult, *, key: str, settings_digest: str, run_id: str | None
) -> dict[str, Any]:
    # label counts as the tone counts them: sentences and list items (TONE_KINDS)
    counted = {s.index for s in result.sentences if s.kind in TONE_KINDS}
    labels = Counter(s.label for s in result.scores if s.sentence_index in counted)
    stamp = result.stamp
    return dict(
        doc_key=key,
        doc_id=result.doc_id,
        source=result.source,
        file_name=result.document.file_name if result.document else None,
        status=result.status,
        model_digest=stamp.model_digest,
        settings_digest=settings_digest,
        model_name=stamp.model_name,
        model_version=stamp.model_version,
        code_version=stamp.code_version,
        git_commit=stamp.git_commit,
        stamp_run_id=stamp.run_id,
        created_at=stamp.created_at,
        saved_at=_now(),
        run_id=run_id or stamp.run_id,
        client=result.client,
        engagement=result.engagement,
        n_pages=result.document.n_pages if result.document else 0,
        n_sentences=len(result.sentences),
        n_scored=len(result.scores),
        n_explained=len(result.explanations),
        n_errors=len(result.errors),
        n_positive=labels["positive"],
        n_negative=labels["negative"],
        n_neutral=labels["neutral"],
        document=result.document.model_dump(mode="json") if result.document else None,
        settings=result.settings,
        timings=result.timings,
    )


def _error_row(result_id: int, position: int, e: StageError) -> dict[str, Any]:
    return dict(
        result_id=result_id,
        position=position,
        stage=e.stage,
        code=e.code,
        page_no=e.page_no,
        message=e.message,
        fatal=e.fatal,
    )


def _page_row(result_id: int, position: int, p: Page) -> dict[str, Any]:
    return dict(
        result_id=result_id,
        position=position,
        page_no=p.page_no,
        width=p.width,
        height=p.height,
        rotation=p.rotation,
        status=p.status,
        text=p.text,
        layout=p.model_dump(mode="json", exclude=set(_PAGE_COLUMNS)),
    )


def _sentence_row(result_id: int, s: Sentence) -> dict[str, Any]:
    return dict(
        result_id=result_id,
        sentence_index=s.index,
        doc_id=s.doc_id,
        page_no=s.page_no,
        char_start=s.start,
        char_end=s.end,
        text=s.text,
        kind=s.kind,
        section=s.section,
        section_type=s.section_type,
        boxes=[b.model_dump(mode="json") for b in s.boxes],
        detail=s.model_dump(mode="json", exclude={*_SENTENCE_COLUMNS, "boxes"}),
    )


def _score_row(result_id: int, s: Score) -> dict[str, Any]:
    return dict(
        result_id=result_id,
        sentence_index=s.sentence_index,
        label=s.label,
        p_positive=s.probabilities.get("positive"),
        p_negative=s.probabilities.get("negative"),
        p_neutral=s.probabilities.get("neutral"),
        confidence=s.confidence,
    )


_EXPLANATION_COLUMNS = {
    "sentence_index",
    "label",
    "base_value",
    "output_value",
    "additivity_error",
    "model_digest",
    "cached",
}


def _explanation_row(result_id: int, e: Explanation) -> dict[str, Any]:
    return dict(
        result_id=result_id,
        **e.model_dump(mode="json", include=_EXPLANATION_COLUMNS),
        detail=e.model_dump(mode="json", exclude=_EXPLANATION_COLUMNS),
    )


def _stamp(row: _Result) -> Stamp:
    return Stamp(
        model_name=row.model_name,
        model_version=row.model_version,
        model_digest=row.model_digest,
        code_version=row.code_version,
        git_commit=row.git_commit,
        run_id=row.stamp_run_id,
        created_at=row.created_at,
    )


def _sentence(row: _Sentence) -> Sentence:
    return Sentence.model_validate(
        dict(
            row.detail or {},
            doc_id=row.doc_id,
            index=row.sentence_index,
            page_no=row.page_no,
            start=row.char_start,
            end=row.char_end,
            text=row.text,
            kind=row.kind,
            section=row.section,
            section_type=row.section_type,
            boxes=row.boxes,
        )
    )


def _score(row: _Score) -> Score:
    values = (row.p_positive, row.p_negative, row.p_neutral)
    return Score(
        sentence_index=row.sentence_index,
        label=row.label,  # type: ignore[arg-type]
        probabilities={k: v for k, v in zip(LABELS, values, strict=True) if v is not None},
        confidence=row.confidence,
    )


def _load(session: Session, row: _Result) -> DocumentResult:
    def children(table: Any, order: Any) -> list[Any]:
        return list(
            session.scalars(sa.select(table).where(table.result_id == row.id).order_by(order))
        )

    errors = [
        StageError(
            stage=e.stage,
            code=e.code,
            page_no=e.page_no,  # type: ignore[arg-type]
            message=e.message,
            fatal=e.fatal,
        )
        for e in children(_Error, _Error.position)
    ]
    pages = [
        Page.model_validate(
            dict(
                p.layout,
                page_no=p.page_no,
                width=p.width,
                height=p.height,
                rotation=p.rotation,
                status=p.status,
                text=p.text,
            )
        )
        for p in children(_Page, _Page.position)
    ]
    explanations = [
        Explanation.model_validate(
            dict(
                e.detail,
                sentence_index=e.sentence_index,
                label=e.label,
                base_value=e.base_value,
                output_value=e.output_value,
                additivity_error=e.additivity_error,
                model_digest=e.model_digest,
                cached=e.cached,
            )
        )
        for e in children(_Explanation, _Explanation.sentence_index)
    ]
    return DocumentResult(
        source=row.source,
        document=Document.model_validate(row.document) if row.document else None,
        status=row.status,  # type: ignore[arg-type]
        pages=tuple(pages),
        sentences=tuple(_sentence(s) for s in children(_Sentence, _Sentence.sentence_index)),
        scores=tuple(_score(s) for s in children(_Score, _Score.sentence_index)),
        explanations=tuple(explanations),
        errors=tuple(errors),
        stamp=_stamp(row),
        settings=row.settings,
        timings=row.timings,
        client=row.client,
        engagement=row.engagement,
    )


def _summary(row: _Result) -> ResultSummary:
    return ResultSummary(
        result_id=row.id,
        doc_id=row.doc_id,
        source=row.source,
        file_name=row.file_name,
        status=row.status,  # type: ignore[arg-type]
        model_name=row.model_name,
        model_version=row.model_version,
        model_digest=row.model_digest,
        settings_digest=row.settings_digest,
        run_id=row.run_id,
        created_at=row.created_at,
        n_pages=row.n_pages,
        n_sentences=row.n_sentences,
        n_scored=row.n_scored,
        n_explained=row.n_explained,
        n_errors=row.n_errors,
        label_counts={
            "positive": row.n_positive,
            "negative": row.n_negative,
            "neutral": row.n_neutral,
        },
        client=row.client,
        engagement=row.engagement,
    )


def _document_counts(session: Session, run_ids: str | list[str]) -> Any:
    """Per-status document counts of one run (a dict) or of several (a dict per run id)."""
    ids = [run_ids] if isinstance(run_ids, str) else run_ids
    counts: dict[str, dict[str, int]] = {r: {} for r in ids}
    if ids:
        for run_id, status, n in session.execute(
            sa.select(_RunDocument.run_id, _RunDocument.status, sa.func.count())
            .where(_RunDocument.run_id.in_(ids))
            .group_by(_RunDocument.run_id, _RunDocument.status)
        ):
            counts[run_id][status] = n
    return counts[run_ids] if isinstance(run_ids, str) else counts


def _run_status(counts: dict[str, int]) -> RunStatus:
    if counts.get("pending") or counts.get("running"):
        return "interrupted"
    done = sum(counts.values())
    if done and counts.get("failed") == done:
        return "failed"
    if counts.get("failed") or counts.get("partial"):
        return "partial"
    return "ok"


def _run_info(row: _Run, counts: dict[str, int]) -> RunInfo:
    return RunInfo(
        run_id=row.run_id,
        kind=row.kind,  # type: ignore[arg-type]
        status=row.status,  # type: ignore[arg-type]
        started_at=row.started_at,
        finished_at=row.finished_at,
        manifest=tuple(ManifestEntry.model_validate(m) for m in row.manifest),
        stamp=Stamp.model_validate(row.stamp) if row.stamp else None,
        settings=row.settings,
        summary=row.summary,
        document_counts=dict(sorted(counts.items())),
    )


def _run_document(row: _RunDocument) -> RunDocument:
    return RunDocument(
        run_id=row.run_id,
        source=row.source,
        doc_id=row.doc_id,
        status=row.status,  # type: ignore[arg-type]
        attempts=row.attempts,
        started_at=row.started_at,
        finished_at=row.finished_at,
        timings=row.timings,
        error=row.error,
        result_id=row.result_id,
    )


def _review(row: _Review) -> ReviewAction:
    return ReviewAction(
        id=row.id,
        result_id=row.result_id,
        doc_id=row.doc_id,
        sentence_index=row.sentence_index,
        action=row.action,  # type: ignore[arg-type]
        reviewer=row.reviewer,
        created_at=row.created_at,
        label=row.label,
        previous_label=row.previous_label,  # type: ignore[arg-type]
        comment=row.comment,
        model_version=row.model_version,
        model_digest=row.model_digest,
    )


def _monitor_report(row: _MonitorReport) -> MonitorReport:
    return MonitorReport(
        id=row.id,
        kind=row.kind,
        created_at=row.created_at,
        model_digest=row.model_digest,
        run_id=row.run_id,
        report=row.report,
    )


def _comparison_summary(row: _Comparison) -> ComparisonSummary:
    return ComparisonSummary(
        comparison_id=row.id,
        prior_result_id=row.prior_result_id,
        current_result_id=row.current_result_id,
        prior_doc_id=row.prior_doc_id,
        current_doc_id=row.current_doc_id,
        prior_file_name=row.prior_file_name,
        current_file_name=row.current_file_name,
        client=row.client,
        prior_engagement=row.prior_engagement,
        current_engagement=row.current_engagement,
        model_digest=row.model_digest,
        model_version=row.model_version,
        created_at=row.created_at,
        counts=row.counts,
        moved_sections=row.moved_sections,
    )


def _check_review(
    action: str, sentence_index: int | None, label: str | None, comment: str | None
) -> None:
    if action in _SENTENCE_ACTIONS and sentence_index is None:
        raise StoreError(f"A review '{action}' needs the sentence it concerns.")
    if action in _DOCUMENT_ACTIONS and sentence_index is not None:
        raise StoreError(f"A '{action}' concerns the whole document, not a sentence.")
    if action == "override" and label not in LABELS:
        raise StoreError(f"An override needs the new label, one of {', '.join(LABELS)}.")
    if action != "override" and label is not None:
        raise StoreError(f"Only an override sets a label; '{action}' was given {label!r}.")
    if action == "comment" and not (comment and comment.strip()):
        raise StoreError("A comment needs its text.")
    if action == "resolve" and (sentence_index is None or not (comment and comment.strip())):
        raise StoreError("Resolving a dispute needs the sentence and a comment saying why.")
    if action.endswith("_exception") and not (comment and comment.strip()):
        raise StoreError("A sign-off recorded as an exception needs a comment saying why.")
