"""`sesame compare`: this year's report against last year's, section by section."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from app.cli.options import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    ExplainOpt,
    ModelDirOpt,
    ModelOpt,
    PasswordOpt,
    with_overrides,
)
from app.compare.findings import flipped, new_negatives, removed_negatives
from app.compare.service import Comparer, CompareUsageError, Side, client_documents
from app.config import load_settings
from app.errors import CompareError, SesameError
from app.records import Comparison
from app.store import ResultStore

_log = logging.getLogger(__name__)


def compare(
    reports: Annotated[
        list[str] | None,
        typer.Argument(
            help="PRIOR CURRENT: files, or stored documents by sha256 (a unique prefix of 6+ "
            "hex digits will do), or with --client their periods (FY2019, 2019). One: CURRENT, "
            "against the client's previous document. None: the client's latest document "
            "against its previous.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the comparison workpaper and JSON.")
    ] = Path("out"),
    client: Annotated[
        str | None,
        typer.Option(
            help="The client: names stored documents by period, and is given to files analyzed "
            "now.",
            show_default=False,
        ),
    ] = None,
    prior_period: Annotated[
        str | None,
        typer.Option(help="Engagement given to PRIOR when it is a file analyzed now."),
    ] = None,
    current_period: Annotated[
        str | None,
        typer.Option(help="Engagement given to CURRENT when it is a file analyzed now."),
    ] = None,
    explain: ExplainOpt = None,
    model: ModelOpt = None,
    model_dir: ModelDirOpt = None,
    password: PasswordOpt = None,
    top: Annotated[
        int, typer.Option(min=0, help="Findings of each kind printed here (outputs keep all).")
    ] = 10,
) -> None:
    """Compare this year's report with last year's: tone shift per section, changed disclosures.

    Both reports are scored by one model (the champion, or --model / --model-dir); a report
    scored by another is rescored first, and the outputs say so. Writes
    OUT/compare-<prior>-vs-<current>.xlsx and .json and keeps the comparison in the store.

    Exit status: 0 compared; 1 a report is partial or could not be compared; 2 usage error.
    """
    console = Console(stderr=True)
    refs = list(reports or [])
    if len(refs) > 2:
        raise typer.BadParameter("give at most two reports: PRIOR CURRENT", param_hint="REPORTS")
    if not refs and not client:
        raise typer.BadParameter(
            "name the reports (PRIOR CURRENT), or a client with --client", param_hint="REPORTS"
        )
    settings = with_overrides(
        load_settings(), explain=explain, model=model, model_dir=model_dir, password=password
    )
    settings.ensure_dirs()
    with ResultStore.from_settings(settings) as store:
        comparer = Comparer(settings, store, console=console)
        try:
            prior, current = _sides(comparer, refs, client, prior_period, current_period, console)
            with console.status("comparing…"):
                comparison = comparer.compare(prior, current)
                outcome = comparer.finish(comparison, out)
        except CompareUsageError as e:
            console.print(f"[red]usage: {e}[/]")
            raise typer.Exit(EXIT_USAGE) from e
        except (CompareError, SesameError) as e:
            console.print(f"[red]{e}[/]")
            raise typer.Exit(EXIT_PROBLEMS) from e
    say(comparison, console, top)
    for kind, path in outcome.outputs.items():
        console.print(f"{kind}: {path}")
    if outcome.comparison_id is not None:
        console.print(f"stored as comparison {outcome.comparison_id}")
    typer.echo(count_line(comparison))
    sys.stdout.flush()
    partial = "partial" in (comparison.prior.status, comparison.current.status)
    raise typer.Exit(EXIT_PROBLEMS if partial else EXIT_OK)


def _sides(
    comparer: Comparer,
    refs: list[str],
    client: str | None,
    prior_period: str | None,
    current_period: str | None,
    console: Console,
) -> tuple[Side, Side]:
    def side(ref: str, period: str | None) -> Side:
        path = Path(ref)
        if path.is_file():
            return comparer.analyze_file(path, client=client, engagement=period)
        return comparer.stored(comparer.find(ref, client=client))

    if len(refs) == 2:
        return side(refs[0], prior_period), side(refs[1], current_period)
    if refs:
        current = side(refs[0], current_period)
        summary = next(
            s
            for s in comparer.store.list_results(doc_id=current.result.doc_id)
            if s.result_id == current.result_id
        )
    else:
        assert client is not None
        docs = client_documents(comparer.store, f"client:{' '.join(client.split()).casefold()}")
        if not docs:
            raise CompareUsageError(f"no stored documents of client {client!r}.")
        summary = docs[-1]
        current = comparer.stored(summary)
    previous = comparer.previous(summary)
    console.print(
        f"comparing {summary.file_name} ({summary.engagement or 'no period'}) with the "
        f"client's previous, {previous.file_name} ({previous.engagement or 'no period'})",
        highlight=False,
    )
    return comparer.stored(previous), current


def count_line(comparison: Comparison) -> str:
    """`2,245 sentences last year, 2,420 this year: 1,720 unchanged, 258 edited, 442 new, ...`"""
    n = comparison.counts
    return (
        f"{n['prior']:,} sentences last year, {n['current']:,} this year: {n['unchanged']:,} "
        f"unchanged, {n['edited']:,} edited, {n['new']:,} new, {n['removed']:,} removed"
    )


def say(comparison: Comparison, console: Console, top: int) -> None:
    """The comparison's findings on the console: model, notes, moved sections, negatives."""
    f = comparison.stamp_fields()
    console.print(
        f"model {f['model_name']} {f['model_version']} (sha256 {f['model_sha256'][:12]}…) · "
        f"prior sha256 {f['prior_sha256'][:12]}… · current sha256 {f['current_sha256'][:12]}…",
        highlight=False,
    )
    for note in comparison.notes:
        console.print(f"[yellow]note: {note}[/]", highlight=False)
    w = comparison.whole
    console.print(
        f"tone, whole report: {_tone(w.prior.tone)} -> {_tone(w.current.tone)}, shift "
        f"{_tone(w.shift)} [{_tone(w.shift_low)}, {_tone(w.shift_high)}]"
        + (" (moved)" if w.moved else ""),
        highlight=False,
    )
    moved = [s for s in comparison.sections if s.moved]
    console.print(
        f"{len(moved)} section(s) whose tone moved beyond its 95% interval", highlight=False
    )
    for s in moved[:top]:
        console.print(
            f"  {s.title[:60]}: {_tone(s.prior.tone)} -> {_tone(s.current.tone)} "
            f"(n {s.prior.n} -> {s.current.n}), shift {_tone(s.shift)} "
            f"[{_tone(s.shift_low)}, {_tone(s.shift_high)}]",
            highlight=False,
        )
    for title, found, side in (
        ("new negative sentences", new_negatives(comparison), "current"),
        ("removed negative sentences", removed_negatives(comparison), "prior"),
        ("labels flipped", flipped(comparison), "current"),
    ):
        console.print(f"{len(found)} {title}", highlight=False)
        for c in found[:top]:
            s = getattr(c, side)
            other = c.prior if side == "current" else None
            was = f" (was {other.label}, p. {other.page_no})" if other is not None else ""
            console.print(
                f"  p. {s.page_no} [{s.label} {s.p_negative or 0:.2f}]{was} {s.text[:200]}",
                highlight=False,
                markup=False,
            )


def _tone(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3f}"


def register(app: typer.Typer) -> None:
    """Attach `compare` to the root app."""
    app.command()(compare)
