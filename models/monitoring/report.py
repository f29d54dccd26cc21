"""Drift reports as files: the standalone HTML page, report.json, and where they are kept.

`report_html` renders a `DriftReport` (every value escaped), `write_report` writes it with its
JSON and the current profile into a folder, and `monitoring_dir` / `run_report_dir` say
where those folders live under the data directory (the store keeps every report too). It is
its own module because presentation and file layout change for reasons the statistics do not.
"""

from __future__ import annotations

import html
import logging
import re
from pathlib import Path

from models.monitoring.drift import DriftReport
from models.monitoring.profile import Profile, save_profile

_log = logging.getLogger(__name__)


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "–"
    if x != 0 and abs(x) < 10**-digits:
        return f"{x:.1e}"
    return f"{x:.{digits}f}"


def report_html(report: DriftReport) -> str:
    """The report as a standalone HTML page; every value from the data is escaped."""
    e = html.escape
    verdict = report.verdict()
    rows = []
    for t in report.tests:
        detail = "; ".join(f"{k}: {v}" for k, v in t.detail.items())
        rows.append(
            f"<tr class='{e(t.status)}'><td>{e(t.name)}</td><td>{e(t.method)}</td>"
            f"<td>{_fmt(t.effect)}</td><td>{_fmt(t.threshold)}</td>"
            f"<td>{_fmt(t.statistic)}</td><td>{_fmt(t.p_value)}</td>"
            f"<td>{e(t.status)}{'' if t.gating else ' (info)'}</td><td>{e(detail)}</td></tr>"
        )
    meta = {
        "run": report.run_id or "–",
        "model": report.model_name or "–",
        "model version": report.model_version or "–",
        "reference": report.reference_source,
        "reference sentences": report.reference_sentences,
        "current sentences": report.current_sentences,
        "created": report.created_at.isoformat(timespec="seconds"),
    }
    notes = "".join(f"<p class='note'>Note: {e(n)}</p>" for n in report.notes)
    meta_rows = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in meta.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>sesame drift report {e(report.run_id or "")}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
tr.drift td {{ background: #fdd; }} tr.skipped td {{ color: #888; }}
.verdict {{ font-size: 1.4em; font-weight: bold; }}
</style></head><body>
<h1>Drift report</h1>
<p class="verdict">{e(verdict)}</p>
<table>{meta_rows}</table>
<table><tr><th>test</th><th>method</th><th>effect</th><th>threshold</th><th>statistic</th>
<th>p-value</th><th>status</th><th>detail</th></tr>
{"".join(rows)}
</table>
{notes}
<p>A test drifts when its effect passes the threshold and its p-value is below
{e(_fmt(report.thresholds.alpha))}.</p>
</body></html>
"""


def write_report(
    report: DriftReport, out_dir: Path, *, current: Profile | None = None
) -> dict[str, Path]:
    """Write report.json and report.html (and the current profile) into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "html": out_dir / "report.html"}
    paths["json"].write_text(report.model_dump_json(indent=1))
    paths["html"].write_text(report_html(report), encoding="utf-8")
    if current is not None:
        paths["profile"] = save_profile(current, out_dir / "profile.json")
    return paths


def monitoring_dir(data_dir: Path) -> Path:
    """Where run reports live: data_dir/monitoring/runs/<run_id>/."""
    return data_dir / "monitoring"


def run_report_dir(data_dir: Path, run_id: str) -> Path:
    """The folder of one run's report (the run id is made file-name safe)."""
    safe = re.sub(r"[^\w.-]+", "_", run_id).strip("._") or "run"
    return monitoring_dir(data_dir) / "runs" / safe
