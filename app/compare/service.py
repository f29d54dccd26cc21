"""Comparisons end to end, for `sesame compare`, the Compare page and the nightly batch.

- Inputs: a file (analyzed through the run service, `app.runs.run_documents`, which reuses a
  stored result of the same bytes, model and settings), or a document already in the store:
  by its sha256 or a unique prefix of at least 6 hex digits, or by a client and period. A
  period is the engagement the result was stored with (`--engagement FY2019`), matched without
  regard to case and spacing, or a 4-digit year matched against the year in it.
- The client's previous document (`previous_of`): among the stored documents of the same
  client (results of the same `client`; for results stored without one, those whose source
  lies in the same first folder, one client per folder of a batch inbox), the one whose period
  comes last before this one's. A period's order is its year: the first 19xx/20xx year in the
  engagement, else in the file name, else the year the result was made; a tie, or no year, is
  decided by when the results were made.
- Like for like: both results must be scored by the model in force (the settings' champion,
  `--model` or `--model-dir`) with the same scoring settings. A result that was not is
  replaced by, in this order: a stored result of the same document by that model; the
  document re-analyzed from its PDF (kept upload or unchanged source file) through the run
  service; its stored sentences rescored (`app.compare.rescore`). The comparison says which.
- Outputs: the comparison workpaper and JSON (`compare-<prior>-vs-<current>.xlsx/.json`) and a
  row in the store's `comparisons` table.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from app.compare.comparison import LABEL_SETTINGS, compare_results, scoring_setting
from app.compare.export import write_comparison_json
from app.compare.findings import new_negatives
from app.compare.rescore import rescore_result
from app.compare.workpaper import write_comparison_workpaper
from app.config import Settings
from app.errors import CompareError
from app.kept import find_document
from app.pipeline import Analyzer, result_settings
from app.records import Comparison, DocumentResult, ResultSummary
from app.runs import RunOutcome, RunRequest, output_stem, run_documents
from app.stamps import new_run_id
from app.store import ResultStore
from batch.plan import InputFile, identify, identify_bytes
from batch.workers import LocalExecutor
from models.registry import resolve_model

_log = logging.getLogger(__name__)

USABLE = ("ok", "partial")
_HEX = re.compile(r"[0-9a-f]{6,64}")
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")
MIN_PREFIX = 6


class CompareUsageError(Exception):
    """The comparison names something that is not there, or is ambiguous (exit status 2)."""


@dataclass(slots=True)
class Side:
    """One year of a comparison: its result, stored id, and what the reader must know of it."""

    result: DocumentResult
    result_id: int | None
    notes: list[str] = field(default_factory=list)
    rescored_from: dict[str, Any] | None = None


@dataclass(slots=True)
class CompareOutcome:
    """A comparison made: the record, its stored id and the files written."""

    comparison: Comparison
    comparison_id: int | None
    outputs: dict[str, Path] = field(default_factory=dict)


# --- periods and the client's previous document ----------------------------------------------


def period_year(summary: ResultSummary) -> int | None:
    """The year of a result's period: in its engagement, else its file name (None: neither)."""
    for text in (summary.engagement, summary.file_name or summary.source):
        found = _YEAR.search(text or "")
        if found:
            return int(found.group(0))
    return None


def period_key(summary: ResultSummary) -> tuple[int, datetime]:
    """How periods are ordered: by year (see the module docstring), then by when made."""
    return (period_year(summary) or summary.created_at.year, summary.created_at)


def client_key(summary: ResultSummary) -> str | None:
    """Whose document this is: its client, else the first folder of its source, else None."""
    if summary.client:
        return f"client:{' '.join(summary.client.split()).casefold()}"
    parts = PurePosixPath(summary.source.replace("\\", "/")).parts
    if len(parts) > 1 and not summary.source.startswith("/"):
        return f"folder:{parts[0].casefold()}"
    return None


def _one_per_document(
    summaries: Iterable[ResultSummary], model_digest: str | None
) -> list[ResultSummary]:
    """One result per document: the newest by the given model, else the newest usable."""
    best: dict[str, ResultSummary] = {}
    for s in summaries:  # newest first
        if s.doc_id is None or s.status not in USABLE:
            continue
        have = best.get(s.doc_id)
        if have is None or (have.model_digest != model_digest and s.model_digest == model_digest):
            best[s.doc_id] = s
    return list(best.values())


def client_documents(
    store: ResultStore, key: str, model_digest: str | None = None
) -> list[ResultSummary]:
    """The stored documents of one client (a `client_key`), in period order."""
    found = [s for s in store.list_results() if client_key(s) == key]
    return sorted(_one_per_document(found, model_digest), key=period_key)


def previous_of(
    store: ResultStore, summary: ResultSummary, model_digest: str | None = None
) -> ResultSummary | None:
    """The client's previous document: the last one whose period comes before this one's."""
    key = client_key(summary)
    if key is None:
        return None
    mine = period_key(summary)
    earlier = [
        s
        for s in client_documents(store, key, model_digest)
        if s.doc_id != summary.doc_id and period_key(s) < mine
    ]
    return earlier[-1] if earlier else None


def _norm(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


# --- the service ------------------------------------------------------------------------------


class Comparer:
    """Resolves, rescores, compares, writes and stores comparisons with one model."""

    def __init__(
        self,
        settings: Settings,
        store: ResultStore,
        *,
        analyzer: Analyzer | None = None,
        load_analyzer: Callable[[], Analyzer] | None = None,
        model: Any = None,
        console: Any = None,
    ) -> None:
        """Args:
        analyzer: a loaded analyzer; else `load_analyzer` (or the settings) loads one when a
            document must be analyzed or rescored.
        model: the model in force (name, version, digest) when the caller knows it already.
        console: a rich Console for the run service's progress (files analyzed now).
        """
        self.settings = settings
        self.store = store
        self._analyzer = analyzer
        self._load_analyzer = load_analyzer
        self.console = console
        self._model: Any = analyzer.scorer if analyzer is not None else model
        self.scoring = {
            k: v for k, v in result_settings(settings)["scoring"].items() if k in LABEL_SETTINGS
        }

    # --- the model ---------------------------------------------------------------------

    @property
    def model(self) -> Any:
        """The model in force (name, version, digest), resolved without loading its weights."""
        if self._model is None:
            self._model = resolve_model(self.settings)
        return self._model

    @property
    def analyzer(self) -> Analyzer:
        """The analyzer (loaded the first time a document must be analyzed or rescored)."""
        if self._analyzer is None:
            if self._load_analyzer is not None:
                self._analyzer = self._load_analyzer()
            else:
                self._analyzer = Analyzer.from_settings(self.settings)
            if self._analyzer.scorer.digest != self.model.digest:
                raise CompareError(
                    f"the loaded model (sha256 {self._analyzer.scorer.digest[:12]}…) is not the "
                    f"model in force ({self.model.digest[:12]}…); the champion moved meanwhile. "
                    "Run the comparison again."
                )
        return self._analyzer

    def needs_rescoring(self, side: Side) -> bool:
        """Whether a side was scored by another model or with other scoring settings."""
        return not self._alike(side.result)

    def _alike(self, result: DocumentResult) -> bool:
        return result.stamp.model_digest == self.model.digest and all(
            scoring_setting(result, k) == v for k, v in self.scoring.items()
        )

    # --- inputs ------------------------------------------------------------------------

    def analyze(
        self,
        item: InputFile,
        *,
        client: str | None = None,
        engagement: str | None = None,
    ) -> Side:
        """One input analyzed through the run service (a stored result is reused)."""

        analyzer = self.analyzer

        def make_executor(_n: int, on_stage: Any) -> LocalExecutor:
            executor = LocalExecutor(self.settings, analyzer=analyzer, on_stage=on_stage)
            executor.start()
            return executor

        outcome = run_documents(
            RunRequest(
                kind="analyze",
                inputs=[item],
                client=client,
                engagement=engagement,
                extra_summary={"via": "compare"},
            ),
            self.settings,
            model=analyzer.scorer,
            make_executor=make_executor,
            store=self.store,
            console=self.console,
        )
        row = outcome.rows[0]
        if row.result_id is None or row.status == "failed":
            why = "; ".join(str(e.get("message")) for e in row.row.get("errors") or ())
            raise CompareError(f"{item.source}: could not be analyzed ({why or row.status}).")
        result = self.store.load_result(row.result_id)
        assert result is not None
        return Side(result, row.result_id)

    def analyze_file(
        self, path: Path, *, client: str | None = None, engagement: str | None = None
    ) -> Side:
        """A file analyzed through the run service (a stored result is reused)."""
        return self.analyze(
            identify(path, path.name, self.settings.ingest.password),
            client=client,
            engagement=engagement,
        )

    def find(self, ref: str, *, client: str | None = None) -> ResultSummary:
        """A stored document by sha256 (or a unique prefix) or, with a client, by period."""
        digest = self.model.digest
        text = ref.strip()
        if _HEX.fullmatch(text.lower()):
            prefix = text.lower()
            docs = _one_per_document(
                (s for s in self.store.list_results() if (s.doc_id or "").startswith(prefix)),
                digest,
            )
            if len(docs) == 1:
                return docs[0]
            if len(docs) > 1:
                names = ", ".join(f"{d.file_name} ({(d.doc_id or '')[:12]})" for d in docs[:5])
                raise CompareUsageError(
                    f"{ref}: {len(docs)} stored documents have a sha256 starting so ({names}); "
                    "give more of the sha256."
                )
        if client:
            key = f"client:{_norm(client)}"
            docs = client_documents(self.store, key, digest)
            if not docs:
                known = sorted({s.client for s in self.store.list_results() if s.client})
                raise CompareUsageError(
                    f"no stored documents of client {client!r}"
                    + (f"; clients in the store: {', '.join(known[:20])}" if known else "")
                    + ". Analyze the reports with --client first."
                )
            found = [d for d in docs if _norm(d.engagement) == _norm(text)]
            if not found and re.fullmatch(r"(19|20)\d{2}", text):
                found = [d for d in docs if period_year(d) == int(text)]
            if len(found) == 1:
                return found[0]
            periods = ", ".join(
                f"{d.engagement or '(no period)'}: {d.file_name} ({(d.doc_id or '')[:12]})"
                for d in (found or docs)[:10]
            )
            if found:
                raise CompareUsageError(
                    f"{ref}: {len(found)} documents of {client} have this period ({periods}); "
                    "name one by its sha256."
                )
            raise CompareUsageError(f"{ref}: no document of {client} has this period ({periods}).")
        if Path(text).suffix:
            raise CompareUsageError(f"{ref}: no such file.")
        raise CompareUsageError(
            f"{ref}: not a file, nor the sha256 (or a unique prefix of {MIN_PREFIX}+ hex digits) "
            "of a stored document; with --client, a period of that client (FY2019, 2019)."
        )

    def stored(self, summary: ResultSummary) -> Side:
        """A stored result as one side of a comparison."""
        result = self.store.load_result(summary.result_id)
        if result is None:
            raise CompareUsageError(f"result {summary.result_id} is no longer in the store.")
        return Side(result, summary.result_id)

    def previous(self, summary: ResultSummary) -> ResultSummary:
        """The client's previous document, or a usage error saying why there is none."""
        found = previous_of(self.store, summary, self.model.digest)
        if found is None:
            who = summary.client or "this document's client"
            raise CompareUsageError(
                f"{summary.file_name or summary.source}: the store holds no earlier document of "
                f"{who} to compare it with (periods are ordered by the year in the engagement "
                "or file name)."
            )
        return found

    # --- like for like -----------------------------------------------------------------

    def like_for_like(self, side: Side, year: str) -> Side:
        """The side scored by the model in force (see the module docstring)."""
        result = side.result
        if self._alike(result):
            return side
        was = (
            f"{result.stamp.model_name} {result.stamp.model_version or 'unregistered'} "
            f"(sha256 {result.stamp.model_digest[:12]}…)"
        )
        model = self.model
        now = f"{model.name} {model.version or 'unregistered'} (sha256 {model.digest[:12]}…)"
        name = result.document.file_name if result.document else result.source
        before = {
            "result_id": side.result_id,
            "model_name": result.stamp.model_name,
            "model_version": result.stamp.model_version,
            "model_digest": result.stamp.model_digest,
        }
        doc_id = result.doc_id
        if doc_id is not None:
            for s in self.store.list_results(doc_id=doc_id, model_digest=self.model.digest):
                if s.status not in USABLE:
                    continue
                other = self.store.load_result(s.result_id)
                if other is not None and self._alike(other):
                    note = (
                        f"{year.capitalize()} ({name}) had been scored by {was}; its result "
                        f"{s.result_id}, scored by {now}, is compared instead."
                    )
                    how: Any = other.settings.get("rescored_from") or {**before, "how": "stored"}
                    return Side(other, s.result_id, [*side.notes, note], how)
        sources = [s.source for s in self.store.list_results(doc_id=doc_id)] if doc_id else []
        data = find_document(self.settings, doc_id, [result.source, *sources])
        if data is not None:
            fresh = self.analyze(
                identify_bytes(data, name, self.settings.ingest.password),
                client=result.client,
                engagement=result.engagement,
            )
            note = (
                f"{year.capitalize()} ({name}) had been scored by {was}; it was analyzed again "
                f"from its PDF with {now} (result {fresh.result_id})."
            )
            return Side(
                fresh.result, fresh.result_id, [*side.notes, note], {**before, "how": "pdf"}
            )
        rescored = rescore_result(
            result, self.analyzer.scorer, self.settings, result_id=side.result_id
        )
        result_id = self.store.save_result(rescored)
        note = (
            f"{year.capitalize()} ({name}) had been scored by {was}; its stored sentences were "
            f"rescored with {now} (result {result_id}; its PDF was not at hand, so the "
            "sentences are as read then, and evidence of the old model was dropped)."
        )
        made: Any = rescored.settings.get("rescored_from")
        return Side(rescored, result_id, [*side.notes, note], made)

    # --- the comparison ----------------------------------------------------------------

    def compare(self, prior: Side, current: Side) -> Comparison:
        """Compare two sides (rescored first where needed); CompareError when they cannot be."""
        if prior.result.doc_id is not None and prior.result.doc_id == current.result.doc_id:
            raise CompareUsageError(
                f"{prior.result.source} and {current.result.source} are the same document "
                f"(sha256 {prior.result.doc_id[:12]}…); name last year's and this year's reports."
            )
        prior = self.like_for_like(prior, "last year's report")
        current = self.like_for_like(current, "this year's report")
        comparison = compare_results(
            prior.result,
            current.result,
            self.settings.compare,
            prior_result_id=prior.result_id,
            current_result_id=current.result_id,
            run_id=new_run_id(),
            notes=[*prior.notes, *current.notes],
        )
        update: dict[str, Any] = {}
        for name, side in (("prior", prior), ("current", current)):
            if side.rescored_from is not None:
                doc = getattr(comparison, name)
                update[name] = doc.model_copy(update={"rescored_from": side.rescored_from})
        return comparison.model_copy(update=update) if update else comparison

    def finish(
        self, comparison: Comparison, out: Path | None, *, save: bool = True
    ) -> CompareOutcome:
        """Store the comparison and write its workpaper and JSON under `out` (when given)."""
        comparison_id = self.store.save_comparison(comparison) if save else None
        outputs: dict[str, Path] = {}
        if out is not None:
            stem = comparison_stem(comparison)
            outputs["workpaper"] = write_comparison_workpaper(comparison, out / f"{stem}.xlsx")
            outputs["json"] = write_comparison_json(comparison, out / f"{stem}.json")
        return CompareOutcome(comparison, comparison_id, outputs)


def comparison_stem(comparison: Comparison) -> str:
    """`compare-<prior>-vs-<current>`, from the two file names (safe for any file system)."""
    taken: set[str] = set()
    a = output_stem(comparison.prior.file_name or comparison.prior.source, taken)
    b = output_stem(comparison.current.file_name or comparison.current.source, taken)
    return f"compare-{a}-vs-{b}"


# --- the batch: each new filing against the client's previous one -----------------------------


@dataclass(slots=True)
class PreviousRow:
    """What became of one new filing when the batch compared it with the client's previous."""

    source: str
    result_id: int
    previous: str | None = None
    comparison_id: int | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    moved_sections: int = 0
    new_negatives: int = 0
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "result_id": self.result_id,
            "previous": self.previous,
            "comparison_id": self.comparison_id,
            "outputs": self.outputs,
            "counts": self.counts,
            "moved_sections": self.moved_sections,
            "new_negatives": self.new_negatives,
            "note": self.note,
        }


def compare_with_previous(
    comparer: Comparer, result_ids: Sequence[int], out: Path | None
) -> list[PreviousRow]:
    """Compare each of these stored results with its client's previous document, if any."""

    by_id = {s.result_id: s for s in comparer.store.list_results()}
    rows: list[PreviousRow] = []
    for result_id in result_ids:
        summary = by_id.get(result_id)
        if summary is None:
            continue
        row = PreviousRow(summary.source, result_id)
        rows.append(row)
        if client_key(summary) is None:
            row.note = "no client (give --client, or keep one client per folder of the inbox)"
            continue
        previous = previous_of(comparer.store, summary, comparer.model.digest)
        if previous is None:
            row.note = "no earlier document of this client in the store"
            continue
        row.previous = previous.file_name or previous.source
        try:
            comparison = comparer.compare(comparer.stored(previous), comparer.stored(summary))
            done = comparer.finish(comparison, out)
        except (CompareError, CompareUsageError) as e:
            row.note = str(e)
            continue
        row.comparison_id = done.comparison_id
        row.outputs = {k: str(v) for k, v in done.outputs.items()}
        row.counts = dict(comparison.counts)
        row.moved_sections = sum(1 for s in comparison.sections if s.moved)
        row.new_negatives = len(new_negatives(comparison))
    return rows


def compare_new_filings(
    settings: Settings,
    store: ResultStore,
    model: Any,
    outcome: RunOutcome,
    out: Path,
    console: Any,
) -> Path | None:
    """The batch's `--compare-previous`: each filing the run analyzed against its client's
    previous one (outputs under `out/compare/`, rows in the store, a summary
    `out/compare-<run id>.json`); returns the summary's path, None when nothing was new."""

    fresh = [
        r.result_id
        for r in outcome.rows
        if r.result_id is not None and r.status in ("ok", "partial") and not (r.earlier or r.reused)
    ]
    if not fresh:
        return None
    comparer = Comparer(settings, store, model=model, console=console)
    with console.status(f"comparing {len(fresh)} new filing(s) with the client's previous…"):
        rows = compare_with_previous(comparer, fresh, out / "compare")
    done = [r for r in rows if r.comparison_id is not None]
    console.print(
        f"compared {len(done)} of {len(rows)} new filing(s) with the client's previous",
        highlight=False,
    )
    for r in rows:
        if r.comparison_id is not None:
            console.print(
                f"  {r.source} against {r.previous}: {r.moved_sections} section(s) moved, "
                f"{r.new_negatives} new negative sentence(s)",
                highlight=False,
            )
        else:
            console.print(f"  {r.source}: not compared ({r.note})", highlight=False)
    path = out / f"compare-{outcome.run_id}.json"
    path.write_text(
        json.dumps(
            {"run_id": outcome.run_id, "comparisons": [r.to_json() for r in rows]},
            ensure_ascii=False,
            indent=1,
        ),
        encoding="utf-8",
    )
    return path
