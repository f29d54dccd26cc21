"""Weak labels for report sentences, written from the labelling guideline (not from data).

The guideline sesame's report sets are labelled under (Financial PhraseBank's, Malo et al. 2014,
with report rules: shared/data/reports_dev/README.txt) says things news-trained models never
saw: a risk factor stating an adverse possibility is negative; safe-harbour and legal
boilerplate is neutral; for costs, debt, losses and expenses an increase is negative and a
decrease positive; definitions, procedure and accounting policy are neutral. These rules turn
that text into high-precision labelling functions over unlabelled report sentences (the SEC
filings), so a teacher can learn report language; a sentence no rule is sure about gets no
label. The rules were written from the guideline and checked on filings sentences only, never
on an evaluation set.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from app.config import load_settings
from app.records import Label, Record
from models.data import Example, write_csv
from models.evaluate import read_eval_file
from models.report_data import ReportSentence, drop_held_out, read_report_sentences
from models.slices import load_slice

SOURCE = "guideline:filings"
LICENCE = "public SEC filings (U.S. government record); labels: sesame's guideline rules"


class WeakLabel(Record):
    """A rule's label for one sentence, and which rule gave it."""

    label: Label
    rule: str


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# --- neutral: boilerplate, definitions, procedure, policy, no change ----------------------------
_SAFE_HARBOUR = _rx(
    r"forward[- ]looking statements?|undertakes? no (obligation|duty)|private securities "
    r"litigation reform act|actual results (could|may|might) differ|speak(s)? only as of|"
    r"safe harbou?r|are not guarantees of future performance"
)
_DEFINITION = _rx(
    r"\b(is|are) defined as\b|\brefers? to\b(?! (our|the) (decline|decrease|increase))|"
    r"\b(we|the company) (define|defines)\b|\bmeans? the\b|\bis calculated as\b|"
    r"\b(is|are) computed (as|by|using)\b|\bconsists? (primarily |principally |mainly )?of\b|"
    r"\bis (the|a) (measure|ratio|sum|total) of\b"
)
_POLICY = _rx(
    r"\bwe (recognize|record|account for|measure|classify|amortize|capitalize|depreciate|"
    r"estimate|evaluate|review|present|disclose|test)\b|\b(is|are) (recognized|recorded|"
    r"measured|classified|amortized|capitalized|depreciated|presented|stated|carried|reported)"
    r" (at|as|in|when|on|over|using|based|within|net)\b|in accordance with (u\.s\. )?gaap|"
    r"\bgenerally accepted accounting principles\b|\bthe (fair value|carrying (value|amount))"
    r" (of|is) .{0,40}\b(determined|estimated|based)\b|\bstraight-line\b|"
    r"\brecognized (ratably|over time|at a point in time)\b"
)
_PROCEDURE = _rx(
    r"incorporated (herein )?by reference|\bexhibit \d|\bpursuant to (section|rule|item)|"
    r"\bfiled (herewith|with the sec)|\bform 10-[kq]\b|\bschedule 14a\b|"
    r"\bthe following table\b|\bsee note \d|\brefer to note\b|\bas (discussed|described) in "
    r"note\b|\bin (millions|thousands)\b"
)
_FLAT = _rx(
    r"\b(was|were|remained) (relatively |essentially |largely |broadly )?(flat|unchanged|"
    r"stable)\b"
)
# present-tense descriptions of what a company does: no development reported (guideline: neutral)
_DESCRIPTION = _rx(
    r"^(we|our company|the company|[A-Z][\w&.-]+) (also )?(offers?|provides?|"
    r"designs?|develops?|sells?|operates?|manufactures?|markets?|distributes?|serves?|"
    r"owns?|leases?|licenses?|maintains?|uses?|relies|rely|competes?|employs?)\b"
)
_POLAR = _rx(
    r"\b(strong|growth|grew|improv|record|increas|decreas|declin|loss|gain|benefit|"
    r"leading|best|excellent|success|profitab|risk|adverse|harm|fail|challeng|weak)"
)
_DIGIT = re.compile(r"\d")

# --- polarity vocabulary --------------------------------------------------------------------
# a denied adverse effect is no adverse development ("did not have a material adverse effect")
_DENIED = _rx(r"\b(not|no|nor|never|without)\b[^.;]{0,40}\b(material(ly)? )?adverse")
_MODAL = _rx(
    r"\b(may|could|might|would|can|cannot|if|should|potential(ly)?|risk of|"
    r"no assurance|not be able|unable to|fail(s|ure)? to|there can be no)\b"
)
_ADVERSE = _rx(
    r"\badverse(ly)? (affect|impact|effect)|material(ly)? (and )?adverse|\bmaterially harm|"
    r"\bharm(s|ed|ing)? (to )?(our|the|its)\b|\bnegatively (affect|impact)|"
    r"\bdamage (to )?(our|the|its) (reputation|brand|business)|\bdisrupt(ion|ions|s|ed)? "
    r"(to )?(our|the|its)\b|\bincur (significant |substantial |additional )?(costs|losses|"
    r"liabilit|expenses|penalt|charges)|\bresult in (significant |substantial |material )?"
    r"(losses|a loss|liabilit|penalt|fines|impairment|reduced|lower|decreased|higher costs|"
    r"increased costs)|\b(decline|decrease|reduction|loss) in (our )?(revenue|sales|demand|"
    r"profitability|margins?|earnings|market share|cash flows?)\b|\bimpairment (charges?|"
    r"losses?) (could|may|might)\b|\bsubject (us|the company) to (significant |substantial )?"
    r"(liabilit|litigation|penalt|fines|claims|sanctions)"
)
_LEGAL_EVENT = _rx(
    r"\b(named as|is a|are) defendants?\b|\bclass actions? (was|were|has been|have been) "
    r"filed\b|\b(filed|brought) (a )?(lawsuit|complaint|suit)s? against (us|the company)\b|"
    r"\bwe (are|were|have been) (currently )?subject to (a number of |various |several )?"
    r"(investigations|lawsuits|litigation|claims|inquiries|proceedings)\b|\bwe (recorded|"
    r"recognized|incurred) (a |an )?(goodwill |non-cash )?(impairment|restructuring) "
    r"(charge|loss)"
)

_COST = (
    r"(costs?|expenses?|expenditures|debt|borrowings|indebtedness|net loss|losses|"
    r"interest expense|cost of (sales|revenues?|goods sold)|charges|"
    r"impairments?|write-downs?|bad debt|provision for (credit|doubtful|loan) losses|"
    r"leverage|headcount reductions?|attrition|churn|delinquenc(y|ies))"
)
_PERFORMANCE = (
    r"(revenues?|net (sales|revenues?|income|earnings)|sales|operating (income|"
    r"profit|margin|cash flows?)|gross (margin|profit)|earnings( per share)?|"
    r"diluted (eps|earnings per share)|eps|ebitda|profits?|free cash flow|"
    r"cash (flows? )?from operations|backlog|bookings|orders|market share|"
    r"membership|subscribers|paid memberships|comparable (store )?sales|"
    r"same-store sales|arr|annualized recurring revenue)"
)
# "higher" / "lower" only as a predicate: "lower of cost or market" is no development
_UP = (
    r"(increased|rose|grew|was up|were up|climbed|jumped|surged|expanded|improved|"
    r"(?:was|were) higher)"
)
_DOWN = (
    r"(decreased|declined|fell|dropped|was down|were down|shrank|contracted|"
    r"deteriorated|weakened|(?:was|were) lower)"
)
# "<subject> <verb>": the subject within a few words before the verb, at the clause's start
# "<subject> <verb>" in the sentence's first clause: the subject, then the verb within a few
# words (no comma between them, so "..., offset by higher costs" is not read as the headline)
_LEAD = r"^[^,;:]{0,80}?\b"
_GAP = r"(?: [\w$%.()-]+){0,5}? "
_COST_UP = _rx(_LEAD + _COST + _GAP + _UP + r"\b")
_COST_DOWN = _rx(_LEAD + _COST + _GAP + _DOWN + r"\b")
_PERF_UP = _rx(_LEAD + _PERFORMANCE + _GAP + _UP + r"\b")
_PERF_DOWN = _rx(_LEAD + _PERFORMANCE + _GAP + _DOWN + r"\b")
# a second development in the same sentence makes it mixed: no sure label
_CONTRAST = _rx(
    r"\b(partially|partly) offset\b|\boffset by\b|\bbut\b|\bhowever\b|\balthough\b|"
    r"\bdespite\b|\bwhile\b|\bwhereas\b|\bexcept\b"
)


def guideline_label(text: str, section_type: str | None = None) -> WeakLabel | None:
    """The guideline's label of one report sentence when a rule is sure of it; else None."""
    t = " ".join(text.split())
    if _SAFE_HARBOUR.search(t) or section_type == "forward_looking":
        return WeakLabel(label="neutral", rule="safe_harbour")
    if _PROCEDURE.search(t):
        return WeakLabel(label="neutral", rule="procedure")
    contrast = bool(_CONTRAST.search(t))
    if not contrast:
        # reported developments: the subject and its direction say the polarity
        for pattern, label, rule in (
            (_COST_UP, "negative", "cost_up"),
            (_COST_DOWN, "positive", "cost_down"),
            (_PERF_UP, "positive", "performance_up"),
            (_PERF_DOWN, "negative", "performance_down"),
        ):
            if pattern.search(t):
                return WeakLabel(label=label, rule=rule)  # type: ignore[arg-type]
    if _FLAT.search(t) and not _ADVERSE.search(t):
        return WeakLabel(label="neutral", rule="flat")
    if _LEGAL_EVENT.search(t):
        return WeakLabel(label="negative", rule="legal_or_charge")
    if _ADVERSE.search(t) and _DENIED.search(t):
        return None
    if _ADVERSE.search(t) and (_MODAL.search(t) or section_type == "risk_factors"):
        return WeakLabel(label="negative", rule="adverse_possibility")
    if (_DEFINITION.search(t) or _POLICY.search(t)) and not _ADVERSE.search(t):
        return WeakLabel(label="neutral", rule="definition_or_policy")
    if (
        section_type == "business"
        and _DESCRIPTION.search(t)
        and not _DIGIT.search(t)
        and not _POLAR.search(t)
    ):
        return WeakLabel(label="neutral", rule="description")
    return None


def weak_examples(
    rows: Iterable[ReportSentence], *, per_rule: int | None = None, source: str = SOURCE
) -> tuple[list[Example], dict[str, int]]:
    """Labelled examples for the sentences a rule is sure of, at most `per_rule` per rule
    (the first ones in the given order), and how many each rule labelled before the cap."""
    counts: Counter[str] = Counter()
    out: list[Example] = []
    for row in rows:
        found = guideline_label(row.text, row.section_type)
        if found is None:
            continue
        counts[found.rule] += 1
        if per_rule is None or counts[found.rule] <= per_rule:
            out.append(Example(text=row.text, label=found.label, source=source))
    return out, dict(counts)


DEFAULT_CAPS = {"procedure": 300, "definition_or_policy": 800}
"""Rules that fire on thousands of near-identical sentences (exhibit lists, policy notes) are
capped, so they do not drown the rest."""


def build_sets(
    rows: Sequence[ReportSentence],
    held_out: Iterable[str],
    *,
    caps: dict[str, int] | None = None,
    unlabelled: int = 0,
    seed: int = 0,
) -> tuple[list[Example], list[str], dict[str, Any]]:
    """Weak-labelled examples and a sample of the remaining (unlabelled) sentences, both free of
    every held-out text, with counts for the record."""
    caps = DEFAULT_CAPS if caps is None else caps
    kept, dropped = drop_held_out(rows, held_out)
    order = list(kept)
    random.Random(seed).shuffle(order)  # caps take a random subset, not the first filings
    counts: Counter[str] = Counter()
    labelled: list[Example] = []
    rest: list[str] = []
    for row in order:
        found = guideline_label(row.text, row.section_type)
        if found is None:
            rest.append(row.text)
            continue
        counts[found.rule] += 1
        if counts[found.rule] <= caps.get(found.rule, 10**9):
            labelled.append(Example(text=row.text, label=found.label, source=SOURCE))
        else:
            rest.append(row.text)
    stats = {
        "sentences": len(rows),
        "held_out_dropped": dropped,
        "rules": dict(counts),
        "caps": caps,
        "labelled": dict(Counter(e.label for e in labelled)),
        "unlabelled_available": len(rest),
        "unlabelled": min(unlabelled, len(rest)),
    }
    return labelled, rest[:unlabelled], stats


def main(argv: Sequence[str] | None = None) -> int:
    """Write weak-labelled report sentences (CSV) and an unlabelled sample (text) for training."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("reports", type=Path, nargs="+", help="PDF reports, or folders of them.")
    parser.add_argument("--labelled-out", type=Path, required=True)
    parser.add_argument("--unlabelled-out", type=Path)
    parser.add_argument("--unlabelled", type=int, default=0, help="Sentences to sample.")
    parser.add_argument(
        "--exclude",
        type=Path,
        action="append",
        default=[],
        help="Labelled files whose texts must not be used (the settings' "
        "evaluation slices are always excluded).",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = load_settings()
    pdfs = sorted(q for p in args.reports for q in ([p] if p.is_file() else p.glob("*.pdf")))
    held: list[str] = []
    for path in args.exclude:
        held += [e.text for e in read_eval_file(path)[0]]
    for spec in settings.evaluation.slices:
        loaded = load_slice(spec)
        held += [e.text for e in loaded[0]] if loaded else []
    labelled, rest, stats = build_sets(
        read_report_sentences(pdfs, settings), held, unlabelled=args.unlabelled, seed=args.seed
    )
    write_csv(labelled, args.labelled_out)
    if args.unlabelled_out:
        args.unlabelled_out.write_text("".join(t + "\n" for t in rest), encoding="utf-8")
    stats |= {"reports": [p.name for p in pdfs], "excluded_texts": len(held)}
    print(json.dumps(stats, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
