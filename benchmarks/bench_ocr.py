"""OCR: quality against the text layer, speed against OCRmyPDF, and real scans end to end.

    .venv/bin/pip install -e '.[bench]'              # OCRmyPDF and jiwer (benchmark only)
    .venv/bin/python -m benchmarks.bench_ocr           # everything (about 30-60 min, 2 cores)
    .venv/bin/python -m benchmarks.bench_ocr --quick   # 2 pages per report, one resolution

Pages: PAGES_PER_REPORT pages of body text (evenly spread, at least 1,500 characters of text
layer) from each of REPORTS, born-digital reports of ../shared/corpus with a correct text
layer (English, and one Dutch). Each report's pages are copied into one PDF of their own, so
running headers are found over them alike by both readers.

Quality (no hand labels): the text layer read by sesame (`ocr="off"`) is the truth. The same
PDF is read with `ocr="force"`, which renders every page at `ocr_dpi` and OCRs it (exactly
what happens to a page whose fonts have no Unicode map), at each of RESOLUTIONS dpi. Per
page, over the body text (`Page.text`, what sentences are cut from):
- word error rate (jiwer: (substitutions + deletions + insertions) / reference words) after
  typographic normalisation (NFKC, one kind of quote, dash and space; case and punctuation
  kept), and the same on lower-case words without punctuation;
- bag-of-words error: 1 - (words in common, with multiplicity) / reference words: the share
  of WER that is misread words rather than a different reading order;
- sentence recall: the share of text-layer sentences (split_sentences, kind "sentence", five
  words or more) found whole in the OCR'd page's normalised text.

Speed (same run, same pages, these 2 cores): each report's pages rendered at 300 dpi into an
image-only PDF (a scan: no text layer). sesame `read_pdf` (auto: every page needs OCR;
rendering, Tesseract in `ocr_workers` threads, layout) against `ocrmypdf -j 2 --force-ocr
--rasterizer pypdfium --output-type pdf` on the same files (OMP_THREAD_LIMIT=1 for both, as
Tesseract's own threads would only fight the two workers). Wall-clock pages per second.
Also a 40-page scan of one report, read end to end (target: two minutes).

End to end (`--e2e`): `sesame analyze --explain none` on McDonald's Q4 2022 release (fonts
without a Unicode map), the Medicare transmittal scan (image-only) and the 1978 FOMC minutes
with `--ocr force` (a typewritten scan whose embedded OCR layer is poor): sentences, pages,
mean word confidence.

On a shared machine wall time depends on the other jobs; CPU seconds per page (this process
for sesame, the finished children for OCRmyPDF) are recorded beside it.

Writes benchmarks/results/ocr.json.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium

from app.config import IngestOptions, SentenceOptions
from app.ingest import read_pdf
from app.records import Page
from app.sentences import make_nlp, split_sentences

_log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("SESAME_CORPUS", ROOT.parent / "shared" / "corpus"))
"""../shared/corpus next to the checkout; $SESAME_CORPUS for a worktree elsewhere."""
RESULTS = ROOT / "benchmarks" / "results" / "ocr.json"
REPORTS = (
    "apple_2023q3_10q.pdf",
    "costco_2023q3_earnings_release.pdf",
    "amd_2022_annual_report.pdf",
    "philips_2018_annual_report.pdf",
    "uber_2021_10k.pdf",
    "kramp_2017_jaarverslag_nl.pdf",
    "filings/netflix_2021_10k.pdf",
    "filings/3m_2022_10k.pdf",
    "filings/cocacola_2020_10k.pdf",
    "filings/generalmills_2023_annualreport.pdf",
    "filings/ebay_2023q2_earnings.pdf",
)
PAGES_PER_REPORT = 5
RESOLUTIONS = (150, 200, 300)
SCAN_DPI = 300
LONG_SCAN = ("filings/boeing_2019_10k.pdf", 40)
E2E = (
    ("mcdonalds_2022q4_earnings_release.pdf", "auto"),
    ("edge/scanned_medicare_transmittal765.pdf", "auto"),
    ("fomc_minutes_1978-09-19_scan_ocr.pdf", "force"),
)
_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-", "−": "-"})


def normalise(text: str) -> str:
    """Typographic variants made one (quotes, dashes, spaces, ligatures); case kept."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    return re.sub(r"\s+", " ", text).strip()


def plain_words(text: str) -> list[str]:
    """Lower-case words without punctuation."""
    return re.findall(r"[^\W_]+", normalise(text).lower())


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate (jiwer) of hypothesis against reference; 0 for an empty reference."""
    import jiwer

    if not reference.split():
        return 0.0
    return float(jiwer.wer(reference, hypothesis or "-"))


def bag_error(reference: list[str], hypothesis: list[str]) -> float:
    """1 - shared words (with multiplicity) / reference words: misreadings, not order."""
    if not reference:
        return 0.0
    common = sum((Counter(reference) & Counter(hypothesis)).values())
    return 1.0 - common / len(reference)


def pick_pages(path: Path, k: int) -> list[int]:
    """k pages of body text spread over the report (text layer of 1,500+ characters)."""
    _, pages, _ = read_pdf(path, IngestOptions(ocr="off", remove_running=False))
    # not the cover: a filing's first page is a form of check boxes (☒ ☐, which Tesseract's
    # models have no letter for) rather than report text
    good = [p.page_no for p in pages[1:] if p.status == "ok" and len(p.text) >= 1500]
    if len(good) <= k:
        return good
    step = (len(good) - 1) / (k - 1) if k > 1 else 0
    return sorted({good[round(i * step)] for i in range(k)})


def extract(path: Path, page_nos: list[int]) -> bytes:
    """A PDF holding only the given pages of `path` (vector content kept)."""
    src = pdfium.PdfDocument(path)
    out = pdfium.PdfDocument.new()
    try:
        out.import_pages(src, [n - 1 for n in page_nos])
        buf = io.BytesIO()
        out.save(buf)
        return buf.getvalue()
    finally:
        out.close()
        src.close()


def scan_of(data: bytes, dpi: int) -> bytes:
    """The pages rendered at `dpi` into an image-only PDF (grey JPEG pages, as a scanner
    writes them), page size kept."""
    pdf = pdfium.PdfDocument(data)
    try:
        images = [page.render(scale=dpi / 72, grayscale=True).to_pil() for page in pdf]
    finally:
        pdf.close()
    buf = io.BytesIO()
    images[0].save(
        buf, format="PDF", save_all=True, append_images=images[1:], resolution=dpi, quality=90
    )
    return buf.getvalue()


def compare(truth: list[Page], read: list[Page], nlp: Any) -> list[dict[str, Any]]:
    """Per page: WER (as printed and on plain words), bag-of-words error, sentence recall."""
    options = SentenceOptions()
    want = split_sentences(truth, options, nlp)
    rows = []
    by_page = {p.page_no: p for p in read}
    for page in truth:
        got = by_page.get(page.page_no)
        hyp = got.text if got is not None and got.status == "ok" else ""
        ref_n, hyp_n = normalise(page.text), normalise(hyp)
        sents = [
            normalise(s.text)
            for s in want
            if s.page_no == page.page_no
            and s.end_page_no is None
            and s.kind == "sentence"
            and len(s.text.split()) >= 5
        ]
        rows.append(
            {
                "page_no": page.page_no,
                "ref_words": len(ref_n.split()),
                "wer": round(wer(ref_n, hyp_n), 4),
                "wer_plain_words": round(
                    wer(" ".join(plain_words(page.text)), " ".join(plain_words(hyp))), 4
                ),
                "bag_of_words_error": round(bag_error(ref_n.split(), hyp_n.split()), 4),
                "sentences": len(sents),
                "sentences_recovered": sum(1 for s in sents if s in hyp_n),
                "ocr_confidence": got.ocr_confidence if got is not None else None,
                "ocr_language": got.ocr_language if got is not None else None,
            }
        )
    return rows


def pooled(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Word-weighted means over pages (WER pooled as jiwer pools a corpus)."""
    words = sum(r["ref_words"] for r in rows) or 1
    sents = sum(r["sentences"] for r in rows)
    confs = [r["ocr_confidence"] for r in rows if r["ocr_confidence"] is not None]
    return {
        "pages": len(rows),
        "words": words,
        "wer": round(sum(r["wer"] * r["ref_words"] for r in rows) / words, 4),
        "wer_plain_words": round(
            sum(r["wer_plain_words"] * r["ref_words"] for r in rows) / words, 4
        ),
        "bag_of_words_error": round(
            sum(r["bag_of_words_error"] * r["ref_words"] for r in rows) / words, 4
        ),
        "sentences": sents,
        "sentence_recall": round(sum(r["sentences_recovered"] for r in rows) / sents, 4)
        if sents
        else None,
        "median_page_wer": sorted(r["wer"] for r in rows)[len(rows) // 2] if rows else None,
        "mean_ocr_confidence": round(sum(confs) / len(confs), 3) if confs else None,
    }


def run_ocrmypdf(scans: list[Path], out: Path) -> tuple[float, float, list[str]]:
    """OCRmyPDF over the scans, two jobs at a time as sesame's two workers: wall and CPU
    seconds."""
    exe = Path(sys.executable).with_name("ocrmypdf")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "ocrmypdf"]
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    failures = []
    t0 = time.perf_counter()
    cpu0 = _children_cpu()
    for scan in scans:
        proc = subprocess.run(
            [*cmd, "-q", "-j", "2", "--force-ocr", "--rasterizer", "pypdfium", "--output-type",
             "pdf", "-l", "nld" if "kramp" in scan.name else "eng", str(scan),
             str(out / scan.name)],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            failures.append(f"{scan.name}: exit {proc.returncode}: {proc.stderr[-300:]}")
    return time.perf_counter() - t0, _children_cpu() - cpu0, failures


def _children_cpu() -> float:
    """CPU seconds of the finished child processes (OCRmyPDF and its Tesseracts)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def end_to_end(data_dir: Path, out: Path) -> list[dict[str, Any]]:
    """`sesame analyze` on the real scans and garbled release: sentences, confidence, time."""
    rows = []
    for name, mode in E2E:
        path = CORPUS / name
        env = {**os.environ, "SESAME_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "app.cli", "analyze", str(path), "--out", str(out),
             "--explain", "none", "--no-store", "--no-monitor", "--ocr", mode],
            capture_output=True, text=True, env=env, cwd=ROOT, check=False,
        )  # fmt: skip
        secs = time.perf_counter() - t0
        result = out / f"{path.stem}.json"
        if not result.exists():
            rows.append({"file": name, "ocr": mode, "error": proc.stderr[-800:]})
            continue
        data = json.loads(result.read_text())
        pages = data["pages"]
        confs = [p["ocr_confidence"] for p in pages if p.get("ocr_confidence") is not None]
        rows.append(
            {
                "file": name,
                "ocr": mode,
                "status": data["status"],
                "pages": len(pages),
                "pages_ocr": sum(1 for p in pages if p.get("ocr")),
                "sentences": len(data["sentences"]),
                "mean_ocr_confidence": round(sum(confs) / len(confs), 3) if confs else None,
                "min_page_confidence": min(confs) if confs else None,
                "languages": sorted({p["ocr_language"] for p in pages if p.get("ocr_language")}),
                "errors": [f"{e['code']} p{e['page_no']}" for e in data["errors"]],
                "labels": data["summary"]["labels"],
                "seconds": round(secs, 1),
                "first_sentences": [s["text"] for s in data["sentences"][:3]],
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 pages per report, 300 dpi only")
    parser.add_argument("--e2e", action="store_true", help="also analyze the real scans")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed comparison")
    parser.add_argument("--reports", type=int, default=len(REPORTS), help="the first N reports")
    parser.add_argument("--long-pages", type=int, default=LONG_SCAN[1], help="long scan pages")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not CORPUS.is_dir():
        raise SystemExit(f"{CORPUS} not found: the benchmark needs ../shared/corpus")
    os.environ["OMP_THREAD_LIMIT"] = "1"
    k = 2 if args.quick else PAGES_PER_REPORT
    resolutions = (300,) if args.quick else RESOLUTIONS
    nlp = make_nlp(SentenceOptions())
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench_ocr_"))
    results: dict[str, Any] = {
        "benchmark": "ocr",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "engine": _engine_versions(),
    }

    per_res: dict[int, list[dict[str, Any]]] = {dpi: [] for dpi in resolutions}
    per_res_time: dict[int, float] = dict.fromkeys(resolutions, 0.0)
    scans: list[Path] = []
    truths: dict[str, list[Page]] = {}
    chosen: dict[str, list[int]] = {}
    reports = REPORTS[: args.reports]
    for name in reports:
        path = CORPUS / name
        page_nos = pick_pages(path, k)
        chosen[name] = page_nos
        sub = extract(path, page_nos)
        _, truth, _ = read_pdf(sub, IngestOptions(ocr="off"), file_name=path.name)
        truths[name] = truth
        for dpi in resolutions:
            t0 = time.perf_counter()
            _, read, errors = read_pdf(
                sub, IngestOptions(ocr="force", ocr_dpi=dpi), file_name=path.name
            )
            per_res_time[dpi] += time.perf_counter() - t0
            rows = compare(truth, read, nlp)
            for row in rows:
                row["report"] = name
                row["source_page"] = page_nos[row["page_no"] - 1]
            per_res[dpi] += rows
            _log.info("%s @%d dpi: %s", name, dpi, pooled(rows))
        scan = work / f"{path.stem}.pdf"
        scan.write_bytes(scan_of(sub, SCAN_DPI))
        scans.append(scan)
    n_pages = sum(len(v) for v in chosen.values())
    results["pages"] = {"reports": len(reports), "pages": n_pages, "chosen": chosen}
    results["quality"] = {
        str(dpi): {
            **pooled(per_res[dpi]),
            "pages_per_s": round(n_pages / per_res_time[dpi], 3),
            "by_report": {
                name: pooled([r for r in per_res[dpi] if r["report"] == name]) for name in reports
            },
        }
        for dpi in resolutions
    }
    results["quality_pages_300"] = per_res.get(300, [])

    if not args.no_speed:
        # sesame on the image-only scans, then OCRmyPDF on the same files
        t0, cpu0 = time.perf_counter(), time.process_time()
        scan_rows: list[dict[str, Any]] = []
        for name, scan in zip(reports, scans, strict=True):
            _, read, _ = read_pdf(scan, IngestOptions(), file_name=scan.name)
            scan_rows += compare(truths[name], read, nlp)
        sesame_s, sesame_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        load_mid = os.getloadavg()
        ocrmypdf_s, ocrmypdf_cpu, failures = run_ocrmypdf(scans, work)
        ok = not failures
        results["speed"] = {
            "pages": n_pages,
            "scan_dpi": SCAN_DPI,
            "sesame_seconds": round(sesame_s, 1),
            "sesame_pages_per_s": round(n_pages / sesame_s, 3),
            "sesame_cpu_s_per_page": round(sesame_cpu / n_pages, 2),
            "ocrmypdf_seconds": round(ocrmypdf_s, 1),
            "ocrmypdf_pages_per_s": round(n_pages / ocrmypdf_s, 3) if ok else None,
            "ocrmypdf_cpu_s_per_page": round(ocrmypdf_cpu / n_pages, 2) if ok else None,
            "ocrmypdf_failures": failures,
            "speedup_wall": round(ocrmypdf_s / sesame_s, 2) if ok else None,
            "speedup_cpu": round(ocrmypdf_cpu / sesame_cpu, 2) if ok else None,
            "load_average_between": load_mid,
            "sesame_on_scans_quality": pooled(scan_rows),
        }
        name, n = LONG_SCAN[0], args.long_pages
        long_scan = work / "long_scan.pdf"
        long_scan.write_bytes(scan_of(extract(CORPUS / name, list(range(1, n + 1))), SCAN_DPI))
        t0, cpu0 = time.perf_counter(), time.process_time()
        _, pages, errors = read_pdf(long_scan, IngestOptions(), file_name=long_scan.name)
        secs, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        confs = [p.ocr_confidence for p in pages if p.ocr_confidence is not None]
        results["long_scan"] = {
            "source": f"{name} pages 1-{n}, rendered at {SCAN_DPI} dpi into an image-only PDF",
            "pages": len(pages),
            "pages_ok": sum(1 for p in pages if p.status == "ok"),
            "seconds": round(secs, 1),
            "pages_per_s": round(len(pages) / secs, 3),
            "target_seconds": 120,
            "met": secs <= 120,
            "cpu_seconds": round(cpu, 1),
            # what two cores to itself would take: the CPU work shared by the two workers
            "seconds_on_two_free_cores": round(cpu / 2, 1),
            "load_average_after": os.getloadavg(),
            "mean_ocr_confidence": round(sum(confs) / len(confs), 3) if confs else None,
            "errors": [e.code for e in errors],
        }
        _log.info("long scan: %s", results["long_scan"])

    if args.e2e:
        results["end_to_end"] = end_to_end(work / "data", work / "e2e")
    results["load_average"] = {"before": load_before, "after": os.getloadavg()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(json.dumps({k: v for k, v in results.items() if k != "quality_pages_300"}, indent=1))
    return 0


def _engine_versions() -> dict[str, str]:
    import tesserocr

    versions = {"tesserocr_tesseract": tesserocr.tesseract_version().splitlines()[0]}
    try:
        out = subprocess.run(["tesseract", "--version"], capture_output=True, text=True)
        versions["debian_tesseract"] = out.stdout.splitlines()[0] if out.stdout else ""
    except OSError:
        versions["debian_tesseract"] = "not installed"
    try:
        import ocrmypdf

        versions["ocrmypdf"] = ocrmypdf.__version__
    except ImportError:
        versions["ocrmypdf"] = "not installed"
    return versions


if __name__ == "__main__":
    raise SystemExit(main())
