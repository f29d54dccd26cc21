"""HTML / inline-XBRL filings: speed of app.ingest's HTML reader against BeautifulSoup's
get_text(), and its quality on the six corpus filings (../shared/corpus/html).

    .venv/bin/python -m benchmarks.bench_html [--corpus DIR] [--no-print] [--sample-out FILE]

Speed, same run, same files, bytes in memory (files read before timing):
- sesame: `read_document` (parse, walk, pages, furniture, facts), then `split_sentences` and
  `link_sentences`: bytes to sentences with their facts; also the reader alone;
- baseline: BeautifulSoup(data, "lxml").get_text(), the plain implementation (bs4's fastest
  parser; it gives one string: hidden header included, no pages, tables, facts or sentences);
- parsers alone, for the choice of parser: lxml's XML parser, selectolax (lexbor), bs4.
Documents and MB per second, per wall second and per CPU second of this process (the
machine is shared: CPU time is the honest figure; load averages are recorded).
The target: a 4 MB 10-K in at most 5 s from bytes to sentences. The largest corpus filing is
3.3 MB (Boeing), so a 4 MB one is made from it by appending its first pages again before
</body> (real markup, repeated); both are timed.

Quality, on the six filings:
- hidden text: no sentence is anchored inside ix:header or a hidden element, and no sentence
  holds a distinctive ix:header string (one of 6+ characters found nowhere in the shown text);
- sentence boundaries: the sentences of two pages per filing are written to --sample-out
  (default: the temp folder, outside the repository, since it quotes the filings) for
  reading by eye; the verdicts (benchmarks/results/html_boundaries_by_eye.json: per sampled
  sentence, ok or the kind of break) are joined by the sentence's text digest and turned into
  a rate, with an automatic proxy on every sentence (share that opens in lower case);
- facts: per filing, facts shown in the prose, facts attached to sentences, sentences with
  facts;
- pages: with Debian's chromium, each filing is printed to PDF (Playwright, US Letter) and
  read with read_pdf. Each PDF page goes, in order, to the HTML page that holds most of its
  words (a page chromium spills onto a second sheet keeps both); an HTML page's printed page
  number (`Page.label`) is then looked for in its PDF pages' first two and last three lines,
  or in one of their short untabbed lines that starts or ends with a number (the PDF layout
  may order the foot line elsewhere among the blocks). Without chromium the labels' sequence
  is checked instead (each numbered page one more than the numbered page before it).
Writes benchmarks/results/html.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "html"
RESULTS = ROOT / "benchmarks" / "results"
FILES = (
    "aapl-10-k-2024-11-01.html",
    "ba-10-k-2025-02-03.html",
    "crm-10-k-2025-03-05.html",
    "nflx-10-k-2025-01-27.html",
    "nvda-10-q-2025-08-27.html",
    "pg-10-q-2025-04-24.html",
)
TARGET_S = 5.0
TARGET_MB = 4.0
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
]
_WORD = re.compile(r"[A-Za-z]{4,}")


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def _rates(n_docs: int, n_bytes: int, wall: float, cpu: float) -> dict[str, float]:
    mb = n_bytes / 1e6
    return {
        "documents": n_docs,
        "mb": round(mb, 2),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "docs_per_wall_s": round(n_docs / wall, 3),
        "docs_per_cpu_s": round(n_docs / cpu, 3),
        "mb_per_wall_s": round(mb / wall, 3),
        "mb_per_cpu_s": round(mb / cpu, 3),
    }


def to_sentences(data: bytes, name: str) -> tuple[Any, list[Any], list[Any], list[Any]]:
    """Bytes to linked sentences, as the pipeline does before scoring."""
    from app.config import IngestOptions, SentenceOptions
    from app.ingest import link_sentences, read_document
    from app.sentences import split_sentences

    document, pages, errors = read_document(data, IngestOptions(), file_name=name)
    sentences = link_sentences(split_sentences(pages, SentenceOptions()), pages)
    return document, pages, errors, sentences


def speed(data: dict[str, bytes]) -> dict[str, Any]:
    """Every reader over every file, in one process, in turn."""
    import warnings

    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning
    from lxml import etree

    # the baseline reads XHTML with bs4's HTML parser, as a plain implementation would
    warnings.filterwarnings("ignore", category=XMLParsedAsHTMLWarning)
    from selectolax.lexbor import LexborHTMLParser

    from app.config import IngestOptions
    from app.ingest import read_document

    to_sentences(data[FILES[-1]][:200_000] + b"</body></html>", "warm-up.html")  # spaCy, caches
    n_bytes = sum(len(d) for d in data.values())
    per_file: dict[str, dict[str, float]] = {
        name: {"mb": round(len(d) / 1e6, 2)} for name, d in data.items()
    }
    readers: dict[str, Callable[[str, bytes], Any]] = {
        "sesame_to_sentences": lambda n, d: to_sentences(d, n),
        "sesame_reader": lambda n, d: read_document(d, IngestOptions(), file_name=n),
        "bs4_get_text": lambda n, d: BeautifulSoup(d, "lxml").get_text(),
        "parse_lxml_xml": lambda n, d: etree.fromstring(
            d, etree.XMLParser(huge_tree=True, resolve_entities=False, no_network=True)
        ),
        "parse_selectolax": lambda n, d: LexborHTMLParser(d),
        "parse_bs4_lxml": lambda n, d: BeautifulSoup(d, "lxml"),
    }
    out: dict[str, Any] = {}
    for key, fn in readers.items():
        wall = cpu = 0.0
        for name, d in data.items():
            _, w, c = _timed(lambda fn=fn, name=name, d=d: fn(name, d))
            per_file[name][f"{key}_wall_s"] = round(w, 3)
            per_file[name][f"{key}_cpu_s"] = round(c, 3)
            wall, cpu = wall + w, cpu + c
        out[key] = _rates(len(data), n_bytes, wall, cpu)
        print(f"  {key}: {out[key]['mb_per_cpu_s']} MB per CPU-s", flush=True)
    out["ratio_to_sentences_vs_bs4_get_text_cpu"] = round(
        out["bs4_get_text"]["cpu_s"] / out["sesame_to_sentences"]["cpu_s"], 2
    )
    out["ratio_reader_vs_bs4_get_text_cpu"] = round(
        out["bs4_get_text"]["cpu_s"] / out["sesame_reader"]["cpu_s"], 2
    )
    out["per_file"] = per_file
    return out


def four_mb(boeing: bytes) -> dict[str, Any]:
    """A 4 MB 10-K, bytes to sentences: Boeing's filing, its first pages appended again."""
    body_start = boeing.index(b"<body")
    hr = [m.start() for m in re.finditer(rb'<hr style="page-break-after:always"/>', boeing)]
    end = boeing.rindex(b"</body>")
    need = int(TARGET_MB * 1e6) - len(boeing)
    header_end = boeing.index(b"</ix:header></div>", body_start) + len(b"</ix:header></div>")
    cut = next(h for h in hr if h - header_end > need)
    extra = boeing[header_end:cut]
    big = boeing[:end] + b'<hr style="page-break-after:always"/>' + extra + boeing[end:]
    results: dict[str, Any] = {}
    for label, data in (("boeing_3.3MB", boeing), ("boeing_4MB", big)):
        (document, pages, errors, sentences), wall, cpu = _timed(
            lambda data=data: to_sentences(data, "ba-10-k.html")
        )
        results[label] = {
            "mb": round(len(data) / 1e6, 2),
            "pages": len(pages),
            "sentences": len(sentences),
            "facts_in_sentences": sum(len(s.facts) for s in sentences),
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "target_s": TARGET_S,
            "met_cpu": cpu <= TARGET_S,
            "met_wall": wall <= TARGET_S,
        }
        print(f"  {label}: {results[label]}", flush=True)
    return results


def hidden_check(data: bytes, pages: list[Any], sentences: list[Any]) -> dict[str, Any]:
    """Sentences anchored in hidden markup, and sentences holding ix:header strings."""
    from app.ingest.htmltext import element_at, name_of, parse_markup, tags

    markup = parse_markup(data)
    header_strings: set[str] = set()
    for header in markup.root.iter(*tags("header", "ix:")):
        for el in header.iter():
            text = " ".join("".join(el.itertext()).split()) if len(el) == 0 else ""
            if len(text) >= 6 and re.search(r"[A-Za-z]", text):
                header_strings.add(text)
    shown = " ".join(p.text for p in pages) + " ".join(b.text for p in pages for b in p.blocks)
    distinctive = {t for t in header_strings if t not in shown}
    in_hidden = 0
    for s in sentences:
        for path in {s.anchor.path, s.anchor.end_path} if s.anchor else ():
            el = element_at(markup.root, path)
            chain = [el, *el.iterancestors()] if el is not None else []
            if el is None or any(
                name_of(a) == "ix:header" or markup.style(a).hidden for a in chain
            ):
                in_hidden += 1
    leaked = [s.text for s in sentences if any(t in s.text for t in distinctive)]
    return {
        "ix_header_strings": len(header_strings),
        "distinctive_header_strings": len(distinctive),
        "sentences_with_header_strings": len(leaked),
        "sentences_anchored_in_hidden_markup": in_hidden,
        "passed": not leaked and in_hidden == 0,
        "examples": leaked[:3],
    }


def facts_check(pages: list[Any], sentences: list[Any]) -> dict[str, Any]:
    """Facts shown, in the prose, attached to sentences, and why the others are not."""
    shown = [f for p in pages for f in p.facts]
    in_text = [(p, f) for p in pages for f in p.facts if f.start >= 0]
    attached = {(s.page_no, f.fact_id) for s in sentences for f in s.facts}
    spans: dict[int, list[tuple[int, int]]] = {}
    for s in sentences:
        spans.setdefault(s.page_no, []).append((s.start, s.end))
    several = outside = cut = 0
    for p, f in in_text:
        if (p.page_no, f.fact_id) in attached:
            continue
        hit = [(a, b) for a, b in spans.get(p.page_no, ()) if a < f.end and f.start < b]
        overlaps = len(hit)
        if not f.numeric and (overlaps >= 2 or (hit and f.end - f.start > hit[0][1] - hit[0][0])):
            several += 1  # a text block tagging a disclosure: it holds sentences, tables
        elif overlaps == 0:
            outside += 1  # a checkbox or a figure standing alone, in no sentence
        else:
            cut += 1  # a fact a sentence boundary cuts
    return {
        "facts_shown": len(shown),
        "facts_in_tables_or_furniture": len(shown) - len(in_text),
        "facts_in_prose": len(in_text),
        "facts_attached_to_sentences": sum(len(s.facts) for s in sentences),
        "numeric_facts_attached": sum(1 for s in sentences for f in s.facts if f.numeric),
        "not_attached_text_blocks_holding_sentences_or_tables": several,
        "not_attached_in_no_sentence": outside,
        "not_attached_cut_by_a_sentence_boundary": cut,
        "sentences_with_facts": sum(1 for s in sentences if s.facts),
        "sentences": len(sentences),
    }


def boundary_sample(name: str, pages: list[Any], sentences: list[Any]) -> list[dict[str, Any]]:
    """The sentences of two fixed body pages (a third and two thirds in), for reading by eye."""
    numbered = [p.page_no for p in pages if p.text]
    picks = [numbered[len(numbered) // 3], numbered[(2 * len(numbered)) // 3]]
    return [
        {
            "file": name,
            "page": s.page_no,
            "index": s.index,
            "kind": s.kind,
            "sha": hashlib.sha256(s.text.encode()).hexdigest()[:12],
            "text": s.text,
        }
        for s in sentences
        if s.page_no in picks
    ]


def boundary_rates(sample: list[dict[str, Any]], sentences: dict[str, list[Any]]) -> dict[str, Any]:
    verdicts_path = RESULTS / "html_boundaries_by_eye.json"
    verdicts: dict[str, str] = {}
    if verdicts_path.is_file():
        verdicts = json.loads(verdicts_path.read_text())["verdicts"]
    judged = [v for v in (verdicts.get(f"{x['file']}:{x['sha']}") for x in sample) if v]
    ok = sum(1 for v in judged if v == "ok")
    prose = [s for ss in sentences.values() for s in ss if s.kind == "sentence"]
    lower = sum(1 for s in prose if s.text[:1].islower())
    return {
        "by_eye": {
            "sampled_sentences": len(sample),
            "judged": len(judged),
            "intact": ok,
            "rate": round(ok / len(judged), 3) if judged else None,
            "breaks": sorted({v for v in judged if v != "ok"}),
            "verdicts_file": str(verdicts_path.relative_to(ROOT)),
        },
        "automatic_proxy": {
            "prose_sentences": len(prose),
            "opening_in_lower_case": lower,
            "share_opening_in_lower_case": round(lower / max(1, len(prose)), 4),
        },
    }


def print_pdfs(paths: list[Path], folder: Path) -> dict[str, Path]:
    """Each filing printed to PDF by chromium (US Letter, no network)."""
    import shutil

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return {}
    out: dict[str, Path] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            for path in paths:
                page = browser.new_page()
                page.route(
                    "**/*",
                    lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort(),
                )
                page.goto(path.resolve().as_uri(), wait_until="load", timeout=300_000)
                target = folder / f"{path.stem}.pdf"
                target.write_bytes(page.pdf(format="Letter"))
                page.close()
                out[path.name] = target
        finally:
            browser.close()
    return out


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text))


def _lines(page: Any) -> list[str]:
    lines: list[str] = []
    for b in page.blocks:
        text = page.text[b.start : b.end] if b.start >= 0 else b.text
        lines += [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines


def _edge_lines(page: Any) -> list[str]:
    lines = _lines(page)
    return lines[:2] + lines[-3:]


def _align(html_words: list[set[str]], pdf_words: list[set[str]]) -> dict[int, list[int]]:
    """The PDF pages each HTML page became (0-based): chromium may spill a page that does not
    fit on a sheet onto the next, so each PDF page goes, in order, to the HTML page (at or a
    few after the previous one's) that holds most of its words."""
    groups: dict[int, list[int]] = {}
    p = 0
    for q, words in enumerate(pdf_words):
        if not words:  # a sheet holding only what spilled over: the foot line, a number
            if groups:
                groups[p].append(q)
            continue
        window = range(p, min(len(html_words), p + 4))
        p = max(window, key=lambda k: (len(words & html_words[k]) / len(words), -k))
        groups.setdefault(p, []).append(q)
    return groups


def pages_check(pages: list[Any], pdf: Path | None) -> dict[str, Any]:
    """Printed page numbers of the HTML pages against chromium's PDF of the same filing."""
    numbered = [p for p in pages if p.label]
    if pdf is None:
        steps = [
            (a, b)
            for a, b in zip(numbered, numbered[1:], strict=False)
            if a.label.isdigit() and b.label.isdigit()
        ]
        good = sum(1 for a, b in steps if int(b.label) - int(a.label) == b.page_no - a.page_no)
        return {"method": "label sequence", "checked": len(steps), "matched": good}
    from app.config import IngestOptions
    from app.ingest import read_pdf

    _, pdf_pages, _ = read_pdf(pdf, IngestOptions(remove_running=False))
    pdf_words = [_words(p.text + " " + " ".join(b.text for b in p.blocks)) for p in pdf_pages]
    html_words = [_words(p.text + " " + " ".join(b.text for b in p.blocks)) for p in pages]
    groups = _align(html_words, pdf_words)
    checked = matched = 0
    misses: list[dict[str, Any]] = []
    for page in numbered:
        if len(_words(page.text)) < 20:
            continue  # too little text to find the page again by its words
        checked += 1
        group = groups.get(page.page_no - 1, [])
        edges = ""
        if group:
            head = _edge_lines(pdf_pages[group[0]])[:2]
            tail = _edge_lines(pdf_pages[group[-1]])[-3:]
            edges = " | ".join(head + tail)
        number = re.compile(rf"(?<![\w.,-]){re.escape(page.label)}(?![\w.,-])")
        # chromium prints it at the foot or head; the PDF layout may order it elsewhere among
        # the page's blocks, so short untabbed lines of the page count too (not table rows)
        furniture = [
            ln
            for q in group
            for ln in _lines(pdf_pages[q])
            if "\t" not in ln and len(ln.split()) <= 8 and re.search(r"[0-9]$|^[0-9]", ln)
        ]
        if number.search(edges) or any(
            number.fullmatch(ln) or number.match(ln) or number.search(ln[-6:]) for ln in furniture
        ):
            matched += 1
        else:
            misses.append(
                {
                    "page_no": page.page_no,
                    "label": page.label,
                    "pdf_pages": [q + 1 for q in group],
                    "pdf_edges": edges[:200],
                }
            )
    return {
        "method": "chromium PDF of the filing",
        "html_pages": len(pages),
        "pdf_pages": len(pdf_pages),
        "pdf_pages_spilled": sum(len(g) - 1 for g in groups.values()),
        "numbered_pages": len(numbered),
        "checked": checked,
        "matched": matched,
        "misses": misses[:10],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--out", type=Path, default=RESULTS / "html.json")
    # the sample quotes the filings' sentences: written outside the repository, never committed
    parser.add_argument(
        "--sample-out", type=Path, default=Path(tempfile.gettempdir()) / "html_boundary_sample.txt"
    )
    parser.add_argument("--no-print", action="store_true", help="skip the chromium PDFs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    paths = [args.corpus / f for f in FILES]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        print(f"missing corpus files: {missing}", file=sys.stderr)
        return 2
    load_before = list(os.getloadavg())
    data = {p.name: p.read_bytes() for p in paths}
    print("speed", flush=True)
    speed_results = speed(data)
    print("4 MB 10-K", flush=True)
    big = four_mb(data["ba-10-k-2025-02-03.html"])

    print("quality", flush=True)
    pdfs: dict[str, Path] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_print:
            try:
                pdfs = print_pdfs(paths, Path(tmp))
            except Exception as e:  # no chromium or playwright: the label sequence instead
                print(f"  chromium printing unavailable ({e}); checking label sequences")
        quality: dict[str, Any] = {}
        sample: list[dict[str, Any]] = []
        all_sentences: dict[str, list[Any]] = {}
        for name, d in data.items():
            document, pages, errors, sentences = to_sentences(d, name)
            all_sentences[name] = sentences
            sample += boundary_sample(name, pages, sentences)
            quality[name] = {
                "pages": len(pages),
                "errors": [e.message for e in errors],
                "labels_found": sum(1 for p in pages if p.label),
                "hidden": hidden_check(d, pages, sentences),
                "facts": facts_check(pages, sentences),
                "printed_pages": pages_check(pages, pdfs.get(name)),
            }
            print(f"  {name}: {json.dumps(quality[name]['facts'])}", flush=True)
    boundaries = boundary_rates(sample, all_sentences)
    args.sample_out.write_text(
        "\n".join(
            f"{x['file']}:{x['sha']}\tp{x['page']}\t#{x['index']}\t{x['kind']}\t{x['text']}"
            for x in sample
        )
        + "\n"
    )
    printed = [q["printed_pages"] for q in quality.values()]
    report = {
        "benchmark": "html",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_before": load_before,
            "loadavg_after": list(os.getloadavg()),
            "note": "2-core machine shared with other engineers; CPU seconds of this process "
            "are the per-core figure",
        },
        "command": "python -m benchmarks.bench_html " + " ".join(argv or sys.argv[1:]),
        "inputs": [f"{p.name} ({len(data[p.name]) / 1e6:.2f} MB)" for p in paths],
        "speed": speed_results,
        "four_mb_10k": big,
        "quality": quality,
        "summary": {
            "hidden_text_leaks": sum(
                q["hidden"]["sentences_with_header_strings"]
                + q["hidden"]["sentences_anchored_in_hidden_markup"]
                for q in quality.values()
            ),
            "facts_attached": {
                n: q["facts"]["facts_attached_to_sentences"] for n, q in quality.items()
            },
            "printed_pages_checked": sum(p["checked"] for p in printed),
            "printed_pages_matched": sum(p["matched"] for p in printed),
            "boundaries": boundaries,
            "median_mb_per_cpu_s_to_sentences": statistics.median(
                round(len(data[n]) / 1e6 / f["sesame_to_sentences_cpu_s"], 3)
                for n, f in speed_results["per_file"].items()
            ),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out} and {args.sample_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
