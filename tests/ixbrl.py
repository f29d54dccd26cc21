"""Generated inline-XBRL filings for the tests: XHTML as Workiva and other filing agents write
it (a hidden ix:header with contexts and units, facts inside the prose and in tables, CSS page
breaks after each page, a running footer with the printed page number, nested divs), and ESEF
packages around such a report. Nothing here is copied from a real filing.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

NAMESPACES = (
    'xmlns="http://www.w3.org/1999/xhtml" '
    'xmlns:ix="http://www.xbrl.org/2013/inlineXBRL" '
    'xmlns:ixt="http://www.xbrl.org/inlineXBRL/transformation/2020-02-12" '
    'xmlns:ixt-sec="http://www.sec.gov/inlineXBRL/transformation/2015-08-31" '
    'xmlns:xbrli="http://www.xbrl.org/2003/instance" '
    'xmlns:xbrldi="http://xbrl.org/2006/xbrldi" '
    'xmlns:link="http://www.xbrl.org/2003/linkbase" '
    'xmlns:xlink="http://www.w3.org/1999/xlink" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:iso4217="http://www.xbrl.org/2003/iso4217" '
    'xmlns:us-gaap="http://fasb.org/us-gaap/2024" '
    'xmlns:srt="http://fasb.org/srt/2024" '
    'xmlns:dei="http://xbrl.sec.gov/dei/2024" '
    'xmlns:acme="http://www.acme.example/20241231"'
)

HIDDEN_TEXT = "HIDDENHEADERTEXT"
"""Text that stands only inside the hidden ix:header: it must never reach a sentence."""
INVISIBLE_TEXT = "INVISIBLEBLOCKTEXT"
"""Text of a display:none block in the body: it must never reach a sentence either."""

ENTITY = (
    '<xbrli:entity><xbrli:identifier scheme="http://www.sec.gov/CIK">0000000001'
    "</xbrli:identifier>{segment}</xbrli:entity>"
)


def context(cid: str, start: str | None, end: str, member: str | None = None) -> str:
    """An xbrli:context: a duration (start, end) or an instant (start None), maybe a member."""
    segment = (
        '<xbrli:segment><xbrldi:explicitMember dimension="srt:ProductOrServiceAxis">'
        f"{member}</xbrldi:explicitMember></xbrli:segment>"
        if member
        else ""
    )
    period = (
        f"<xbrli:startDate>{start}</xbrli:startDate><xbrli:endDate>{end}</xbrli:endDate>"
        if start
        else f"<xbrli:instant>{end}</xbrli:instant>"
    )
    return (
        f'<xbrli:context id="{cid}">{ENTITY.format(segment=segment)}'
        f"<xbrli:period>{period}</xbrli:period></xbrli:context>"
    )


def unit(uid: str, measure: str, per: str | None = None) -> str:
    """An xbrli:unit: one measure, or measure per `per`."""
    if per is None:
        return f'<xbrli:unit id="{uid}"><xbrli:measure>{measure}</xbrli:measure></xbrli:unit>'
    return (
        f'<xbrli:unit id="{uid}"><xbrli:divide><xbrli:unitNumerator><xbrli:measure>{measure}'
        "</xbrli:measure></xbrli:unitNumerator><xbrli:unitDenominator><xbrli:measure>"
        f"{per}</xbrli:measure></xbrli:unitDenominator></xbrli:divide></xbrli:unit>"
    )


RESOURCES = "".join(
    [
        context("FY2024", "2024-01-01", "2024-12-31"),
        context("FY2023", "2023-01-01", "2023-12-31"),
        context("Q4", "2024-10-01", "2024-12-31"),
        context("AtEnd", None, "2024-12-31"),
        context("FY2024_Widgets", "2024-01-01", "2024-12-31", "acme:WidgetsMember"),
        unit("usd", "iso4217:USD"),
        unit("eur", "iso4217:EUR"),
        unit("shares", "xbrli:shares"),
        unit("usdPerShare", "iso4217:USD", "xbrli:shares"),
        unit("pure", "xbrli:pure"),
    ]
)
HEADER = (
    '<div style="display:none"><ix:header><ix:hidden>'
    f'<ix:nonNumeric name="dei:AmendmentFlag" contextRef="FY2024" id="h1">{HIDDEN_TEXT}'
    "</ix:nonNumeric>"
    '<ix:nonNumeric name="dei:DocumentFiscalYearFocus" contextRef="FY2024" id="h2">2024'
    "</ix:nonNumeric></ix:hidden>"
    '<ix:references><link:schemaRef xlink:type="simple" xlink:href="acme-20241231.xsd"/>'
    f"</ix:references><ix:resources>{RESOURCES}</ix:resources></ix:header></div>"
)

P = '<div style="margin-top:6pt;text-align:justify"><span style="font-family:Arial;font-size:10pt">'
END = "</span></div>"
BOLD = '<div style="margin-top:12pt"><span style="font-size:10pt;font-weight:700">'


def footer(number: int) -> str:
    """A running footer with the printed page number, then the page break (as Workiva)."""
    return (
        '<div style="height:42pt;position:relative;width:100%"><div style="bottom:0;'
        'position:absolute;width:100%"><div style="text-align:center"><span style="font-size:'
        f'8pt">Acme Corp | 2024 Form 10-K | {number}</span></div></div></div>'
        '<hr style="page-break-after:always"/>'
    )


def fact(
    concept: str, text: str, *, context: str = "FY2024", unit: str = "usd", **attrs: str
) -> str:
    """An ix:nonFraction element."""
    extra = " ".join(f'{k}="{v}"' for k, v in attrs.items())
    return (
        f'<ix:nonFraction name="{concept}" contextRef="{context}" unitRef="{unit}" '
        f'decimals="-6" {extra}>{text}</ix:nonFraction>'
    )


PAGE_1 = (
    '<div style="text-align:center"><span style="font-size:14pt;font-weight:700">ACME CORP</span>'
    '</div><div style="text-align:center"><span style="font-size:12pt;font-weight:700">FORM 10-K'
    "</span></div>"
    f"{P}Annual report for the fiscal year ended December 31, 2024.{END}"
    '<hr style="page-break-after:always"/>'
)
PAGE_2 = (
    f"{BOLD}Item 7. Management's Discussion and Analysis{END}"
    f"{P}Revenues increased 16% to $"
    + fact("us-gaap:Revenues", "39.0", scale="9", format="ixt:num-dot-decimal", id="f-rev")
    + f" billion in fiscal 2024, driven by strong demand for widgets.{END}"
    f"{P}The operating loss of the services segment was $"
    + fact(
        "us-gaap:OperatingIncomeLoss",
        "1,234",
        scale="6",
        sign="-",
        format="ixt:num-dot-decimal",
        id="f-loss",
    )
    + " million, and widget sales were $"
    + fact(
        "us-gaap:Revenues",
        "12.5",
        context="FY2024_Widgets",
        scale="9",
        format="ixt:num-dot-decimal",
        id="f-widgets",
    )
    + f" billion.{END}"
    f'<div style="display:none">{INVISIBLE_TEXT} must stay hidden.</div>'
    f"{P}No goodwill impairment was recorded ("
    + fact("us-gaap:GoodwillImpairmentLoss", "—", scale="6", format="ixt:fixed-zero", id="f-zero")
    + f") and the useful life of equipment stays at "
    '<ix:nonNumeric name="us-gaap:PropertyPlantAndEquipmentUsefulLife" contextRef="FY2024" '
    'format="ixt-sec:durwordsen" id="f-life">ten years</ix:nonNumeric>.'
    f"{END}"
    '<table style="border-collapse:collapse;width:100%"><tr><td><span>(in millions)</span></td>'
    "<td><span>2024</span></td><td/><td><span>2023</span></td></tr>"
    "<tr><td><span>Net sales</span></td><td><span>$</span></td><td><span>"
    + fact("us-gaap:Revenues", "39,000", scale="6", format="ixt:num-dot-decimal", id="t1")
    + "</span></td><td><span>$</span></td><td><span>"
    + fact(
        "us-gaap:Revenues",
        "33,600",
        context="FY2023",
        scale="6",
        format="ixt:num-dot-decimal",
        id="t2",
    )
    + "</span></td></tr>"
    "<tr><td><span>Net loss</span></td><td><span>(</span></td><td><span>"
    + fact(
        "us-gaap:NetIncomeLoss", "250", scale="6", sign="-", format="ixt:num-dot-decimal", id="t3"
    )
    + "</span></td><td><span>)</span></td></tr></table>"
    + footer(1)
)
PAGE_3 = (
    f"{BOLD}Risk Factors{END}"
    "<div><div><div>"
    '<div style="margin-top:6pt"><span style="font-size:10pt">Our results depend on a few large '
    'customers.</span> <span style="font-size:10pt">The loss of any of them could harm our '
    "business.</span></div>"
    "</div></div></div>"
    '<div style="padding-left:18pt;text-indent:-18pt"><span style="font-size:10pt">&#8226;</span>'
    '<span style="font-size:10pt;padding-left:14pt">Supply shortages could delay deliveries.</span>'
    "</div>"
    '<div style="padding-left:18pt;text-indent:-18pt"><span style="font-size:10pt">&#8226;</span>'
    '<span style="font-size:10pt;padding-left:14pt">Currency swings could reduce margins.</span>'
    "</div>"
    f"{P}We expect the competitive environment to remain difficult, and pricing pressure in"
    f"{END}" + footer(2)
)
PAGE_4 = (
    f"{P}our largest markets may continue through fiscal 2025.{END}"
    f"{P}Diluted earnings per share were $"
    + fact(
        "us-gaap:EarningsPerShareDiluted",
        "2.15",
        context="Q4",
        unit="usdPerShare",
        format="ixt:num-dot-decimal",
        id="f-eps",
    )
    + f" for the fourth quarter.{END}"
    + footer(3)
)
PAGES = (PAGE_1, PAGE_2, PAGE_3, PAGE_4)


def filing(pages: tuple[str, ...] | list[str] = PAGES, *, extra_head: str = "") -> bytes:
    """An inline-XBRL 10-K as XHTML bytes."""
    body = HEADER + "".join(pages)
    return (
        "<?xml version='1.0' encoding='utf-8'?>\n"
        "<!--XBRL Document Created with a test generator-->\n"
        f"<html {NAMESPACES}><head><title>acme-20241231</title>"
        f'<meta http-equiv="Content-Type" content="text/html"/>{extra_head}</head>'
        f"<body>{body}</body></html>"
    ).encode()


def write_filing(path: Path, pages: tuple[str, ...] | list[str] = PAGES) -> Path:
    """Write `filing()` to a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(filing(pages))
    return path


def esef_package(report: bytes | None = None, *, name: str = "acme-2024-12-31-en") -> bytes:
    """An ESEF report package: META-INF, the report in reports/, an extension taxonomy."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            f"{name}/META-INF/reportPackage.json",
            '{"documentInfo": {"documentType": "https://xbrl.org/report-package/2023/xbri"}}',
        )
        z.writestr(f"{name}/META-INF/taxonomyPackage.xml", "<taxonomyPackage/>")
        z.writestr(f"{name}/www.acme.example/acme-2024-12-31.xsd", "<schema/>")
        if report is not None:
            z.writestr(f"{name}/reports/{name}.xhtml", report)
    return out.getvalue()


ESEF_PAGE = (
    f"{BOLD}Management report{END}"
    f"{P}Revenue rose to EUR "
    + fact(
        "ifrs-full:Revenue",
        "1.234,5",
        unit="eur",
        scale="6",
        format="ixt:num-comma-decimal",
        id="e1",
    )
    + f" million in 2024.{END}"
)


def esef_report() -> bytes:
    """An ESEF-style report: IFRS concepts, euros, numbers written with decimal commas."""
    report = filing([ESEF_PAGE]).decode()
    return report.replace(
        'xmlns:acme="http://www.acme.example/20241231"',
        'xmlns:acme="http://www.acme.example/20241231" '
        'xmlns:ifrs-full="https://xbrl.ifrs.org/taxonomy/2023-03-23/ifrs-full"',
    ).encode()
