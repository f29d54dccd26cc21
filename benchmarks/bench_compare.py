"""How fast and how well does the year-against-year comparison pair sentences?

    SESAME_DATA_DIR=... .venv/bin/python -m benchmarks.bench_compare [--repeats 3]

Inputs: analyzed filings of ../shared/corpus/filings, read from the results store (each one
missing is analyzed first, without SHAP evidence, and stored). Pairs timed: the same company
in consecutive years (MGM Resorts 2019 -> 2020, 289 and 150 pages; Boeing; Netflix) and two
unrelated ~300-page 10-Ks (Activision Blizzard 2022 against American Water Works 2022: almost
nothing pairs, the matcher's worst case).

Speed, median of `--repeats` in this process (the stage only: records in, Comparison out),
against two difflib baselines measured in the same run:
- `difflib lines`: `SequenceMatcher(None, a, b, autojunk=False).get_opcodes()` over the two
  plain texts' lines (the pages' text), what `diff` does; it classes lines, not sentences.
- `difflib sentences`: the same over the two sentence lists' normal forms, each replaced block
  then paired greedily by `SequenceMatcher.ratio()` of the word lists >= the edit threshold (as
  `difflib.ndiff` pairs similar lines): a sentence differ built from the standard library.

Quality, on every pair of filings annotated by hand (each benchmarks/data/compare_*.json, or
those given with --annotations; how each was made is written in it, and its "role" says
whether the threshold was chosen on it or checked on it): precision and recall of "edited"
(the pair is one disclosure) against "new + removed", for sesame's matcher at its threshold,
for the difflib sentence baseline, and, pair by pair, for several similarity measures over a
range of thresholds. The annotated pairs are drawn around the decision (matched
pairs and near misses), so the figures describe the hard cases, not a whole report. The
figures of all annotations together (pooled counts) and of the ones the threshold was not
chosen on are reported too; with a single annotation file the JSON says so.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "filings"
ANNOTATION_DIR = ROOT / "benchmarks" / "data"
"""Every `compare_*.json` here is a hand-annotated pair of filings, and every one is evaluated."""
PAIRS = (
    ("mgmresorts_2019_10k.pdf", "mgmresorts_2020_10k.pdf"),
    ("activisionblizzard_2022_10k.pdf", "americanwaterworks_2022_10k.pdf"),
    ("boeing_2018_10k.pdf", "boeing_2019_10k.pdf"),
    ("boeing_2019_10k.pdf", "boeing_2020_10k.pdf"),
    ("netflix_2021_10k.pdf", "netflix_2022_10k.pdf"),
)


def results(names: set[str], corpus: Path = CORPUS) -> dict[str, Any]:
    """The stored result of each filing (analyzed now, without evidence, when missing)."""
    from app.config import load_settings
    from app.store import ResultStore

    settings = load_settings(explain={"mode": "none"})
    found: dict[str, Any] = {}
    with ResultStore.from_settings(settings) as store:
        for s in store.list_results():  # newest first
            if s.file_name in names and s.file_name not in found and s.status in ("ok", "partial"):
                found[s.file_name] = store.load_result(s.result_id)
        missing = sorted(names - set(found))
        if missing:
            from app.pipeline import Analyzer

            analyzer = Analyzer.from_settings(settings)
            for name in missing:
                print(f"analyzing {name} (not in the store)…", file=sys.stderr, flush=True)
                result = analyzer.analyze(corpus / name)
                store.save_result(result)
                found[name] = result
    return found


def plain_lines(result: Any) -> list[str]:
    return [line for p in result.pages for line in p.text.splitlines() if line.strip()]


def difflib_sentences(prior: Any, current: Any, threshold: float) -> list[tuple[int, int]]:
    """The standard-library sentence differ: opcodes over normal forms, replaced blocks paired
    greedily by SequenceMatcher ratio of their words (what ndiff does with lines)."""
    from app.compare.text import content_words, words

    a = [words(s.text) for s in prior.sentences]
    b = [words(s.text) for s in current.sentences]
    pairs: list[tuple[int, int]] = []
    matcher = difflib.SequenceMatcher(
        None, [" ".join(x) for x in a], [" ".join(x) for x in b], autojunk=False
    )
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pairs.extend(zip(range(i1, i2), range(j1, j2), strict=True))
        elif tag == "replace":
            taken: set[int] = set()
            for i in range(i1, i2):
                best, best_j = 0.0, None
                for j in range(j1, j2):
                    if j in taken:
                        continue
                    sm = difflib.SequenceMatcher(
                        None, content_words(a[i]), content_words(b[j]), autojunk=False
                    )
                    if sm.real_quick_ratio() < threshold or sm.quick_ratio() < threshold:
                        continue
                    r = sm.ratio()
                    if r > best:
                        best, best_j = r, j
                if best_j is not None and best >= threshold:
                    taken.add(best_j)
                    pairs.append((i, best_j))
    return pairs


def timed(fn: Any, repeats: int) -> tuple[float, float, Any]:
    """Median wall and CPU seconds of `repeats` calls, and the last value."""
    walls, cpus, value = [], [], None
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        value = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return round(statistics.median(walls), 3), round(statistics.median(cpus), 3), value


def speed(docs: dict[str, Any], repeats: int) -> list[dict[str, Any]]:
    from app.compare import compare_results
    from app.config import CompareOptions

    options = CompareOptions()
    rows = []
    for a, b in PAIRS:
        prior, current = docs[a], docs[b]
        wall, cpu, comparison = timed(
            lambda p=prior, c=current: compare_results(p, c, options), repeats
        )
        la, lb = plain_lines(prior), plain_lines(current)
        d_wall, d_cpu, _ = timed(
            lambda a=la, b=lb: difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes(),
            repeats,
        )
        s_wall, s_cpu, _ = timed(
            lambda p=prior, c=current: difflib_sentences(p, c, options.edit_similarity), 1
        )
        row = {
            "prior": a,
            "current": b,
            "pages": [prior.document.n_pages, current.document.n_pages],
            "sentences": [len(prior.sentences), len(current.sentences)],
            "counts": comparison.counts,
            "sections": len(comparison.sections),
            "sections_moved": sum(1 for s in comparison.sections if s.moved),
            "sesame_s": wall,
            "sesame_cpu_s": cpu,
            "sesame_stage_s": comparison.timings,
            "difflib_lines_s": d_wall,
            "difflib_lines_cpu_s": d_cpu,
            "plain_lines": [len(la), len(lb)],
            "difflib_sentences_s": s_wall,
            "difflib_sentences_cpu_s": s_cpu,
            "within_10_s": wall <= 10,
        }
        print(
            f"{a} -> {b}: sesame {wall:.2f} s (cpu {cpu:.2f}); difflib lines {d_wall:.2f} s; "
            f"difflib sentences {s_wall:.2f} s; {comparison.counts}",
            flush=True,
        )
        rows.append(row)
    return rows


def _h(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()[:16]


def _counts(tp: int, fp: int, fn: int) -> dict[str, Any]:
    """Precision, recall and F1 of "edited" from its true and false positives and misses."""
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(tp / (tp + fn), 3) if tp + fn else None,
        "f1": round(2 * tp / (2 * tp + fp + fn), 3) if tp else 0.0,
    }


def _pr(predicted: list[bool], truth: list[bool]) -> dict[str, Any]:
    pairs = list(zip(predicted, truth, strict=True))
    return _counts(
        sum(p and t for p, t in pairs),
        sum(p and not t for p, t in pairs),
        sum(t and not p for p, t in pairs),
    )


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def annotation_files(given: list[Path] | None = None) -> list[Path]:
    """The annotation files to evaluate: those given, else every one in benchmarks/data."""
    return sorted(given) if given else sorted(ANNOTATION_DIR.glob("compare_*.json"))


def pooled(rows: list[dict[str, Any]], method: str) -> dict[str, Any]:
    """Precision and recall of one method over the judged pairs of several annotations."""
    tp, fp, fn = (sum(r[method][k] for r in rows) for k in ("tp", "fp", "fn"))
    return {
        "annotations": [r["annotation"] for r in rows],
        "pairs_judged": sum(r["pairs_judged"] for r in rows),
        **_counts(tp, fp, fn),
    }


def summary(quality_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """All annotations together, and those the threshold was not chosen on (held out)."""
    judged = [q for q in quality_rows if "sesame_matcher" in q]
    held_out = [q for q in judged if q["role"] != "threshold chosen here"]
    out: dict[str, Any] = {
        "annotation_files": len(quality_rows),
        "evaluated": len(judged),
        "failed": {q["annotation"]: q["error"] for q in quality_rows if "error" in q},
    }
    if len(quality_rows) == 1:
        out["note"] = (
            "one annotated pair of filings only: its figures describe that pair, and a threshold "
            "chosen on it is not checked on another"
        )
    for label, rows in (("all", judged), ("held_out", held_out)):
        if rows:
            out[label] = {m: pooled(rows, m) for m in ("sesame_matcher", "difflib_sentences")}
    return out


def quality(docs: dict[str, Any], annotation: Path) -> dict[str, Any]:
    from rapidfuzz import fuzz
    from rapidfuzz.distance import Indel

    from app.compare import compare_results
    from app.compare.text import content_words, normal_form, words
    from app.config import CompareOptions

    note = json.loads(annotation.read_text())
    head = {"annotation": _name(annotation), "role": note.get("role", "unstated")}
    names = (note["prior"]["file_name"], note["current"]["file_name"])
    missing = [n for n in names if n not in docs]
    if missing:
        return {**head, "error": f"not analyzed (not in the corpus?): {', '.join(missing)}"}
    prior, current = docs[names[0]], docs[names[1]]
    if (prior.doc_id, current.doc_id) != (note["prior"]["sha256"], note["current"]["sha256"]):
        return {**head, "error": "the annotated filings are not the stored ones (sha256 differs)"}
    texts_a = {s.index: s.text for s in prior.sentences}
    texts_b = {s.index: s.text for s in current.sentences}
    usable, stale = [], 0
    for p in note["pairs"]:
        a, b = texts_a.get(p["prior_index"]), texts_b.get(p["current_index"])
        if (
            a is None
            or b is None
            or _h(a) != p["prior_text_sha256_16"]
            or _h(b) != p["current_text_sha256_16"]
        ):
            stale += 1  # the sentence splitter changed since the annotation
            continue
        if p["same_disclosure"] in (0, 1):
            usable.append((p, a, b))
    truth = [bool(p["same_disclosure"]) for p, _, _ in usable]
    options = CompareOptions()
    comparison = compare_results(prior, current, options)
    edited = {
        (c.prior.index, c.current.index)
        for c in comparison.changes
        if c.change == "edited" and c.prior is not None and c.current is not None
    }
    matcher = _pr([(p["prior_index"], p["current_index"]) in edited for p, _, _ in usable], truth)
    base_pairs = set(difflib_sentences(prior, current, options.edit_similarity))
    index_a = {s.index: i for i, s in enumerate(prior.sentences)}
    index_b = {s.index: i for i, s in enumerate(current.sentences)}
    baseline = _pr(
        [
            (index_a[p["prior_index"]], index_b[p["current_index"]]) in base_pairs
            for p, _, _ in usable
        ],
        truth,
    )

    def sesame(a: str, b: str) -> float:
        wa, wb = content_words(words(a)), content_words(words(b))
        return Indel.normalized_similarity(wa, wb) if wa and wb else 0.0  # as the matcher

    measures = {
        "word_indel_content (sesame)": sesame,
        "word_indel_with_figures": lambda a, b: Indel.normalized_similarity(words(a), words(b)),
        "char_ratio": lambda a, b: fuzz.ratio(normal_form(a), normal_form(b)) / 100,
        "token_sort_ratio": lambda a, b: (
            fuzz.token_sort_ratio(normal_form(a), normal_form(b)) / 100
        ),
        "token_set_ratio": lambda a, b: fuzz.token_set_ratio(normal_form(a), normal_form(b)) / 100,
    }
    sweep: dict[str, Any] = {}
    for name, fn in measures.items():
        sims = [fn(a, b) for _, a, b in usable]
        sweep[name] = {
            f"{t:.2f}": _pr([s >= t for s in sims], truth)
            for t in (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85)
        }
    return {
        **head,
        "pairs_annotated": len(note["pairs"]),
        "pairs_judged": len(usable),
        "pairs_unclear": sum(1 for p in note["pairs"] if p["same_disclosure"] not in (0, 1)),
        "pairs_stale": stale,
        "same_disclosure": sum(truth),
        "edit_similarity": options.edit_similarity,
        "sesame_matcher": matcher,
        "difflib_sentences": baseline,
        "pair_by_pair": sweep,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="the filings folder")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "compare.json"
    )
    parser.add_argument(
        "--annotations",
        type=Path,
        nargs="*",
        help="annotation files (default: every benchmarks/data/compare_*.json)",
    )
    args = parser.parse_args(argv)
    annotations = annotation_files(args.annotations)
    if not args.corpus.is_dir():
        print(f"{args.corpus} is not here; nothing to measure (--corpus DIR)", file=sys.stderr)
        return 2
    names = {n for pair in PAIRS for n in pair}
    for a in annotations:
        note = json.loads(a.read_text())
        names |= {
            n
            for n in (note["prior"]["file_name"], note["current"]["file_name"])
            if (args.corpus / n).is_file()
        }
    docs = results(names, args.corpus)
    report = {
        "benchmark": "compare",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "load_1min": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
        },
        "data_dir": os.environ.get("SESAME_DATA_DIR"),
        "speed": speed(docs, args.repeats),
        "quality": [quality(docs, a) for a in annotations],
    }
    report["quality_summary"] = summary(report["quality"])
    for q in report["quality"]:
        if "sesame_matcher" in q:
            print(f"{q['annotation']} ({q['role']}): {q['pairs_judged']} judged pairs")
            print(f"  sesame matcher: {q['sesame_matcher']}")
            print(f"  difflib sentences: {q['difflib_sentences']}")
        else:
            print(f"{q['annotation']}: {q['error']}")
    for label in ("all", "held_out"):
        if label in report["quality_summary"]:
            print(f"{label}: {report['quality_summary'][label]}")
    if "note" in report["quality_summary"]:
        print(report["quality_summary"]["note"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
