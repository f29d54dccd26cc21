"""The Compare page in a real browser: an auditor opens a client's two stored reports, compares
them, reads the new negative sentences and finds them in the downloaded workpaper.

Uses the `streamlit run` server and Debian's chromium of tests/ui/test_browser.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import openpyxl
import pytest
from compare_support import EDITED_AFTER, NEW, REMOVED, pair

from app.store import ResultStore
from models.scoring import weights_digest

sys.path.insert(0, str(Path(__file__).parent))

from test_browser import CHROMIUM_ARGS, SLOW_MS, _settle, _shot, chromium, server  # noqa: E402, F401

pytestmark = pytest.mark.browser


def test_auditor_compares_two_years_and_finds_the_new_risk_in_the_workpaper(
    server,  # noqa: F811
    chromium,  # noqa: F811
    tmp_path,
    tiny_model_dir,
):
    from playwright.sync_api import expect, sync_playwright

    prior, current = pair(weights_digest(tiny_model_dir))
    with ResultStore(f"sqlite:///{(tmp_path / 'data' / 'results.db').resolve()}") as store:
        store.create_schema()
        store.save_result(prior)
        store.save_result(current)
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=chromium,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 2000},
            accept_downloads=True,
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(60_000)
            page.goto(server)
            page.get_by_label("User name").fill("alice")
            page.get_by_label("Password", exact=True).fill("correct horse battery")
            page.get_by_role("button", name="Sign in", exact=True).click()
            expect(page.get_by_role("heading", name="Analyze reports")).to_be_visible()

            page.get_by_role("link", name="Compare").click()
            expect(page.get_by_role("heading", name="Compare", exact=True)).to_be_visible()
            _settle(page)
            expect(page.get_by_text("Not compared yet.")).to_be_visible()
            page.get_by_role("button", name="Compare", exact=True).click()
            expect(page.get_by_text("sentences last year").first).to_be_visible(timeout=SLOW_MS)
            _settle(page)
            expect(page.get_by_text("Section shifts", exact=True)).to_be_visible()
            _shot(page, "compare_1_shifts")
            # the flipped edit with its word difference
            page.get_by_role("tab", name="Flipped labels (1)").click()
            panel = page.get_by_role("tabpanel", name="Flipped labels (1)")
            expect(panel.get_by_text("and seals")).to_be_visible()
            expect(panel.get_by_text("neutral → negative")).to_be_visible()
            _shot(page, "compare_2_flipped")

            with page.expect_download(timeout=SLOW_MS) as download:
                page.get_by_role("button", name="Comparison workpaper (Excel)", exact=True).click()
            name = download.value.suggested_filename
            assert name.startswith("compare-acme_2022-vs-acme_2023_") and name.endswith(".xlsx")
            saved = tmp_path / name
            download.value.save_as(saved)
        finally:
            browser.close()

    rows = list(openpyxl.load_workbook(saved)["New and removed"].iter_rows(values_only=True))
    findings = {(r[0], r[7]) for r in rows[5:]}
    assert ("new negative", NEW) in findings
    assert ("edited to negative", EDITED_AFTER) in findings
    assert ("removed negative", REMOVED) in findings
