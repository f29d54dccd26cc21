"""`sesame monitor`: drift reports per run, reference profiles, model-reviewer agreement.

Exit status: 0 when nothing passed its threshold, 1 on drift (or agreement below threshold),
2 when monitoring could not run (no run, no reference profile, unreadable file).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from app.config import DriftThresholds, load_settings
from app.errors import SesameError
from app.store import ResultStore
from models.monitoring import (
    AgreementReport,
    DriftReport,
    MonitorError,
    agreement,
    compare,
    export_feedback,
    feedback_from_store,
    load_profile,
    make_reference,
    monitor_run,
    reference_profile,
    reports_headline,
    save_profile,
    stored_reports,
    write_report,
)
from models.scoring import SentimentScorer

_log = logging.getLogger(__name__)

EXIT_OK, EXIT_ALERT, EXIT_ERROR = 0, 1, 2

monitor_app = typer.Typer(
    name="monitor",
    no_args_is_help=True,
    help="Drift and quality monitoring: reports, references, agreement.",
)

ThresholdOpt = Annotated[float | None, typer.Option(show_default=False)]


def _thresholds(
    label_psi: float | None,
    wasserstein: float | None,
    domain_auc: float | None,
    alpha: float | None,
) -> DriftThresholds:
    """The settings' drift thresholds (`[drift]` in sesame.toml) with the command's on top."""
    given = {
        "label_psi": label_psi,
        "wasserstein": wasserstein,
        "domain_auc": domain_auc,
        "alpha": alpha,
    }
    return load_settings().drift.model_copy(
        update={k: v for k, v in given.items() if v is not None}
    )


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_ERROR)


def print_report(report: DriftReport) -> None:
    """The report as a table on stdout, verdict last."""

    table = Table(title=f"drift: run {report.run_id or '–'} vs {report.reference_source}")
    for col in ("test", "effect", "threshold", "p-value", "status"):
        table.add_column(col)
    for t in report.tests:
        effect = "–" if t.effect is None else f"{t.effect:.3f}"
        p = "–" if t.p_value is None else f"{t.p_value:.2g}"
        status = t.status if t.gating else f"{t.status} (info)"
        style = "red" if t.drifted and t.gating else None
        table.add_row(t.name, effect, f"{t.threshold:g}", p, status, style=style)
    console = Console(soft_wrap=True)
    console.print(table)
    for note in report.notes:
        console.print(f"note: {note}", markup=False)
    console.print(
        f"{report.current_sentences} sentences against {report.reference_sentences}: "
        + report.verdict(),
        markup=False,
    )


@monitor_app.command("report")
def report_cmd(
    run: Annotated[
        str | None, typer.Argument(help="Run id (default: the latest run).", show_default=False)
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            help="Reference profile JSON (default: the one saved with the run's model).",
            show_default=False,
        ),
    ] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option(
            help="Embed with this model directory instead of the run's model.", show_default=False
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Also copy report.json and report.html into this folder.", show_default=False
        ),
    ] = None,
    label_psi: ThresholdOpt = None,
    wasserstein: ThresholdOpt = None,
    domain_auc: ThresholdOpt = None,
    alpha: ThresholdOpt = None,
) -> None:
    """Test a run's sentences against its model's reference profile; exit 1 on drift."""

    settings = load_settings()
    settings.ensure_dirs()
    try:
        ref = load_profile(reference) if reference else None
        report, paths = monitor_run(
            settings,
            run,
            reference=ref,
            model_dir=model_dir,
            thresholds=_thresholds(label_psi, wasserstein, domain_auc, alpha),
        )
    except (MonitorError, OSError, ValueError) as e:
        raise _fail(getattr(e, "message", str(e))) from e
    print_report(report)
    if out is not None:
        paths = write_report(report, out)
    typer.echo(f"report: {paths.get('html')}")
    sys.stdout.flush()
    raise typer.Exit(EXIT_ALERT if report.drifted else EXIT_OK)


@monitor_app.command("profile")
def profile_cmd(
    texts: Annotated[Path, typer.Argument(help="Text file, one sentence per line.")],
    model_dir: Annotated[Path, typer.Option(help="Model directory that scores and embeds.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Profile JSON to write.")],
    source: Annotated[
        str | None, typer.Option(help="What the sentences are.", show_default=False)
    ] = None,
) -> None:
    """Profile the sentences of a text file with a model (e.g. a reference from report text)."""

    try:
        lines = [x.strip() for x in texts.read_text(encoding="utf-8").splitlines() if x.strip()]
        scorer = SentimentScorer.from_dir(model_dir, load_settings().scoring)
    except (OSError, UnicodeDecodeError, SesameError) as e:
        raise _fail(getattr(e, "message", str(e))) from e
    if not lines:
        raise _fail(f"{texts}: no sentences")
    profile = reference_profile(lines, scorer, source=source or texts.name)
    save_profile(profile, out)
    typer.echo(f"{len(lines)} sentences profiled: {out}")


@monitor_app.command("compare")
def compare_cmd(
    reference: Annotated[Path, typer.Argument(help="Reference profile JSON.")],
    current: Annotated[Path, typer.Argument(help="Current profile JSON.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for report.json and report.html.", show_default=False),
    ] = None,
    label_psi: ThresholdOpt = None,
    wasserstein: ThresholdOpt = None,
    domain_auc: ThresholdOpt = None,
    alpha: ThresholdOpt = None,
) -> None:
    """Test one saved profile against another; exit 1 on drift."""

    try:
        ref, cur = load_profile(reference), load_profile(current)
    except (OSError, ValueError) as e:
        raise _fail(str(e)) from e
    report = compare(ref, cur, _thresholds(label_psi, wasserstein, domain_auc, alpha))
    print_report(report)
    if out is not None:
        paths = write_report(report, out)
        typer.echo(f"report: {paths['html']}")
    sys.stdout.flush()
    raise typer.Exit(EXIT_ALERT if report.drifted else EXIT_OK)


@monitor_app.command("reference")
def reference_cmd(
    model: Annotated[
        str | None,
        typer.Option(
            help="Registered model as NAME, NAME@ALIAS or NAME/VERSION (default: the champion).",
            show_default=False,
        ),
    ] = None,
    texts: Annotated[
        Path | None, typer.Option(help="Reference sentences, one per line.", show_default=False)
    ] = None,
    run: Annotated[
        str | None,
        typer.Option(
            help="Take a trusted run's sentences (and its model) as the reference.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Make the reference profile runs are tested against (default: the model's eval set).

    Use report sentences (--texts) or a run the auditors trust (--run) when the evaluation
    set is not like the reports the model serves. It takes precedence over the reference
    saved with the model at blessing.
    """

    if texts is not None and run is not None:
        raise _fail("give --texts or --run, not both")
    settings = load_settings()
    settings.ensure_dirs()
    try:
        profile, path = make_reference(settings, model=model, texts=texts, run_id=run)
    except (OSError, UnicodeDecodeError, ValueError, SesameError) as e:
        raise _fail(getattr(e, "message", str(e))) from e
    typer.echo(
        f"reference profile of {profile.model_name} v{profile.model_version or '-'} "
        f"from {profile.source} ({profile.n_sentences} sentences): {path}"
    )


@monitor_app.command("agreement")
def agreement_cmd(
    threshold: Annotated[float, typer.Option(help="Alert below this agreement rate.")] = 0.8,
    min_reviews: Annotated[int, typer.Option(help="Reviews a period needs to alert.")] = 20,
    period: Annotated[Literal["day", "week", "month"], typer.Option()] = "week",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the report here.", show_default=False)
    ] = None,
) -> None:
    """Model-reviewer agreement per model version over time (every decision counts), and
    between reviewers; exit 1 when any model-reviewer figure is below."""

    settings = load_settings()
    settings.ensure_dirs()
    feedback = feedback_from_store(ResultStore.from_settings(settings))
    report = agreement(feedback, threshold=threshold, min_reviews=min_reviews, period=period)
    print_agreement(report)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(report.model_dump_json(indent=1))
    sys.stdout.flush()
    raise typer.Exit(EXIT_ALERT if report.alerts else EXIT_OK)


def print_agreement(report: AgreementReport) -> None:
    """Agreement rows as a table, alerts in red."""

    console = Console(soft_wrap=True)
    if not report.overall:
        console.print("no reviewed sentences yet")
        return
    table = Table(
        title=f"model-reviewer agreement (alert below {report.threshold:.0%} with "
        f"at least {report.min_reviews} reviews)"
    )
    for col in ("model version", "period", "reviews", "agreement", "95% interval", "kappa"):
        table.add_column(col)
    for r in (*report.rows, *report.overall):
        kappa = "–" if r.kappa is None else f"{r.kappa:.2f}"
        table.add_row(
            r.model_version,
            r.period,
            str(r.n),
            f"{r.rate:.1%}",
            f"{r.ci_low:.1%}–{r.ci_high:.1%}",
            kappa,
            style="red" if r.below_threshold else None,
        )
    console.print(table)
    for pair in report.between_reviewers:
        kappa = "–" if pair.kappa is None else f"{pair.kappa:.2f}"
        console.print(
            f"between reviewers, model version {pair.model_version}: {pair.agreed} of {pair.pairs} "
            f"pairs agree ({pair.rate:.1%}, {pair.ci_low:.1%}–{pair.ci_high:.1%}, kappa {kappa}) "
            f"on {pair.sentences} sentence{'' if pair.sentences == 1 else 's'} decided by two or "
            "more people",
            markup=False,
        )
    console.print(
        f"{len(report.alerts)} below threshold" if report.alerts else "no alerts", markup=False
    )


@monitor_app.command("feedback")
def feedback_cmd(
    out: Annotated[Path, typer.Argument(help="CSV to write (text,label).")],
) -> None:
    """Write reviewed sentences (latest review each) as training data for `sesame train
    --feedback`; the file's digest goes into the next model's lineage."""

    settings = load_settings()
    settings.ensure_dirs()
    path, n, digest = export_feedback(settings, out)
    typer.echo(f"{n} reviewed sentences -> {path} (sha256 {digest[:12]}…)")
    if n == 0:
        typer.echo(
            "no reviews yet: agree with or override labels on the Review page first", err=True
        )


@monitor_app.command("history")
def history_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows.")] = False,
) -> None:
    """Saved drift reports, oldest first: run, time, model version, verdict, drifted tests."""

    settings = load_settings()
    settings.ensure_dirs()
    reports = stored_reports(ResultStore.from_settings(settings))
    rows: list[dict[str, Any]] = [
        {
            "run_id": r.run_id,
            "created_at": r.created_at.isoformat(timespec="seconds"),
            "model_version": r.model_version,
            "sentences": r.current_sentences,
            "drifted": r.drifted,
            "state": r.state,
            "verdict": r.verdict(),
            "tests": [t.name for t in r.drifted_tests()],
        }
        for r in reports
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        typer.echo("no drift reports yet")
    for row in rows:
        typer.echo(
            f"{row['created_at']}  {row['run_id']}  v{row['model_version'] or '-'}  "
            f"{row['sentences']} sentences  {row['verdict']}"
        )
    if rows:
        typer.echo(reports_headline(reports))


def register(app: typer.Typer) -> None:
    """Attach `sesame monitor ...` to the root app."""
    app.add_typer(monitor_app, name="monitor")
