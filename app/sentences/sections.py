"""The section taxonomy: heading text -> normalised section type (`classify_section`:
risk_factors, notes, auditors_report, ...), which headings open a section at all (`is_section`),
and the patterns that decide how far a type carries to the headings below it (top-level
Item/Part headings, major parts of a report). Its own module because it is a vocabulary of
report structure, public for callers that align sections between reports, not a splitting step.
"""

from __future__ import annotations

import re

from app.sentences.segment import has_word

# First match wins, so narrower phrases come before the broad ones they contain
# ("Notes to the Financial Statements" is notes, "Opinion on the Financial Statements" is the
# auditor's report, "Statements of Cash Flows" is a statement, not liquidity).
_SECTION_TYPES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("forward_looking", r"forward[- ]looking|cautionary (note|statement)|safe harbou?r"),
        ("going_concern", r"going concern"),
        (
            "auditors_report",
            r"report of (the )?independent|independent (registered|auditor)"
            r"|auditor'?s'? report|audit report|registered public accounting"
            r"|opinions? on (the )?(consolidated )?financial statements"
            r"|opinions? on (the company's )?internal control"
            r"|basis for (the )?opinion|(critical|key) audit matters?",
        ),
        ("subsequent_events", r"subsequent events?|events after the (balance sheet|reporting)"),
        ("legal_proceedings", r"legal proceedings|litigation"),
        ("market_risk", r"market risk"),
        (
            "risk_factors",
            r"risk factors|principal risks|risks? (related|relating) to"
            r"|risk management|\brisks and uncertainties|\brisks$",
        ),
        (
            "notes",
            r"notes to (the )?(consolidated |condensed |group |company )*financial"
            r"|^note \d+",
        ),
        (
            "financial_statements",
            r"financial statements|(?<!off-)(?<!off )balance sheets?"
            r"|income statements?"
            r"|statements? of (consolidated )?(operations|income|earnings"
            r"|cash flows?|comprehensive|financial (position|condition)"
            r"|changes in|stockholders|shareholders|equity)",
        ),
        (
            "management_discussion",
            r"management'?s discussion|\bmd&a\b|management discussion"
            r"|operating and financial review|results of operations"
            r"|financial review|performance review",
        ),
        ("liquidity", r"liquidity|capital resources|cash flows?\b|funding and capital"),
        ("outlook", r"outlook|guidance|looking ahead|prospects|future developments"),
        ("critical_accounting", r"critical accounting"),
        ("controls_procedures", r"controls and procedures|internal control"),
        ("corporate_governance", r"corporate governance|^governance"),
        ("remuneration", r"remuneration|executive compensation"),
        (
            "shareholder_letter",
            r"letter (to|from)|chairman'?s|chief executive'?s|ceo'?s"
            r"|message from",
        ),
        ("highlights", r"highlights|at a glance|key figures"),
        ("sustainability", r"sustainab|\besg\b|environmental, social|climate"),
        ("business", r"^item \d+\.?\s*business\b|^business( overview)?$|^our business$"),
    )
)

# A section type carries over to the unrecognised headings below it only from a top-level
# heading ("Item 1A. Risk Factors" covers "Operational Risks"; "Item 9. Changes in ..." ends
# "Notes") or from a major part of a report; narrower types (liquidity, outlook, ...) stay with
# their own heading, so "Liquidity" does not leak into the next subsection.
MAJOR_TYPES = frozenset(
    {
        "risk_factors",
        "management_discussion",
        "financial_statements",
        "notes",
        "auditors_report",
        "business",
    }
)
# Once a report shows Item/Part structure (a 10-K), only these parts of Item 8 may open a new
# top-level type without an Item heading; "Risks and Uncertainties" inside a note stays local.
MAJOR_IN_ITEMS = frozenset({"financial_statements", "notes", "auditors_report"})
TOP_LEVEL = re.compile(
    r"^(part\s+[ivx]+\b|item\s+\d+[a-z]?\b|article\s+\w+|exhibit\b|schedule\b|signatures?\b"
    r"|appendix\b|annex\b)",
    re.IGNORECASE,
)
PART = re.compile(r"^part\s+[ivx]+\b", re.IGNORECASE)
ITEM = re.compile(r"^(part\s+[ivx]+|item\s+\d)", re.IGNORECASE)
# Titles that do not open a section: contents pages, and table column headers that look like
# titles ("Year Ended", "Outstanding", "(In millions)").
_NOT_A_SECTION = re.compile(
    r"^(table of )?contents$|^index$|^\(?continued\)?$"
    r"|^(fiscal )?(years?|quarters?|(three|six|nine|twelve) months|periods?|weeks?) ended\b"
    r"|^as of\b|^\(?in (millions|thousands|billions)\b"
    r"|^(outstanding|value|amount|total|balance|shares|number|price|date|percent|change"
    r"|description|name|title)$",
    re.IGNORECASE,
)


def classify_section(heading: str) -> str | None:
    """The normalised section type of a heading (risk_factors, notes, ...), or None."""
    text = " ".join(heading.replace("\u2019", "'").split())
    for name, pattern in _SECTION_TYPES:
        if pattern.search(text):
            return name
    return None


def is_section(heading: str) -> bool:
    return has_word(heading) and not _NOT_A_SECTION.match(heading)
