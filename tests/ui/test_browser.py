"""End to end in a real browser: an auditor signs in, uploads a report, overrides a sentence and
finds the override in the downloaded workpaper.

`streamlit run streamlit_app.py` runs as a subprocess against a fresh data directory and the
tiny model; Debian's chromium is driven by Playwright (never `playwright install`). Set
SESAME_UI_SCREENSHOTS=/some/dir to keep a screenshot of every page visited.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from pdfs import write_clean_report

from app.ui.pages_review import TABLE_HEADER_PX, TABLE_ROW_PX
from app.ui.users import add_user

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
COMMENT = "Boilerplate wording, not a finding (browser test)."
SLOW_MS = 300_000  # model load and analysis on a busy two-core machine


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed with apt when missing and possible; else the test skips."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    reason = "chromium is not installed"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        done = subprocess.run(
            "apt-get update -qq && apt-get install -y -qq --no-install-recommends "
            "chromium fonts-liberation",
            shell=True,
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
        )
        found = shutil.which("chromium")
        if found:
            return found
        reason += f" and apt-get could not install it: {done.stderr.strip()[-300:]}"
    else:
        reason += " and this user cannot install it (run `make sysdeps` as root)"
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path, tiny_model_dir: Path) -> Iterator[str]:
    """The review UI served by `streamlit run` on a free port, with one user; yields its URL."""
    data_dir = tmp_path / "data"
    add_user(
        data_dir / "users.toml", "alice", "correct horse battery", name="Alice Auditor", rounds=4
    )
    port = _free_port()
    env = {
        **os.environ,
        "SESAME_DATA_DIR": str(data_dir),
        "SESAME_SCORING__MODEL_DIR": str(tiny_model_dir),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    log = (tmp_path / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "streamlit_app.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.fileWatcherType",
            "none",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    "streamlit did not come up:\n"
                    + (tmp_path / "streamlit.log").read_text()[-3000:]
                )
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _settle(page) -> None:
    """Wait until Streamlit has finished the current run (its status widget is gone)."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=SLOW_MS
    )


def _shot(page, name: str) -> None:
    folder = os.environ.get("SESAME_UI_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        # widgets draw a moment after the run ends (their code loads on first use)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(2500)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


def test_auditor_uploads_overrides_and_finds_the_override_in_the_workpaper(
    server, chromium, tmp_path, tiny_model_dir
):
    from playwright.sync_api import expect, sync_playwright

    from app.config import load_settings
    from app.store import ResultStore
    from models.registry import resolve_model

    settings = load_settings(data_dir=tmp_path / "data", scoring={"model_dir": tiny_model_dir})
    model = resolve_model(settings)
    digest = model.digest
    report = write_clean_report(tmp_path / "annual_report.pdf")
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

            # sign in
            page.goto(server)
            page.get_by_label("User name").fill("alice")
            page.get_by_label("Password", exact=True).fill("correct horse battery")
            _shot(page, "0_sign_in")
            page.get_by_role("button", name="Sign in", exact=True).click()
            expect(page.get_by_role("heading", name="Analyze reports")).to_be_visible()
            sidebar = page.get_by_test_id("stSidebar")
            expect(sidebar).to_contain_text("Signed in as Alice Auditor (alice)")
            expect(sidebar).to_contain_text(f"unregistered (sha256 {digest[:8]}…)")

            # upload a generated report and wait for its result
            page.get_by_label("Client").fill("Acme Holdings")
            page.locator("input[type=file]").set_input_files(str(report))
            expect(page.get_by_text("annual_report.pdf").first).to_be_visible()
            page.get_by_role("button", name="Analyze", exact=True).click()
            expect(page.get_by_text("1 document: 1 ok, 0 partial, 0 failed")).to_be_visible(
                timeout=SLOW_MS
            )
            _settle(page)
            _shot(page, "1_analyze")

            # open it on the Review page, Sentences tab, and click a row of the table
            page.get_by_role("button", name="Review annual_report.pdf", exact=True).click()
            expect(page.get_by_role("heading", name="Review", exact=True)).to_be_visible()
            _settle(page)
            _shot(page, "2_review_summary")
            page.get_by_role("tab", name="Sentences").click()
            expect(page.get_by_text("15 of 15 sentences.")).to_be_visible()
            _settle(page)
            grid = page.get_by_test_id("stDataFrame").first
            expect(grid).to_be_visible()
            box = grid.bounding_box()
            row = 3  # the 4th sentence, in rows tall enough to wrap it
            y = box["y"] + TABLE_HEADER_PX + TABLE_ROW_PX * row + TABLE_ROW_PX / 2
            page.mouse.click(box["x"] + 14, y)
            heading = page.get_by_role("heading", name=re.compile(r"^Sentence \d+$"))
            expect(heading).to_be_visible()
            index = int(heading.inner_text().split()[-1])
            assert index == row
            _settle(page)
            _shot(page, "3_review_sentence")
            # the sentence opens beside the table, not below the fold
            assert heading.bounding_box()["y"] < box["y"] + box["height"]
            # its page crop is drawn large enough to read: at least 1.2 px per point, so a
            # 10-point line is 12 px high (it was 0.8 px per point in half the width)
            crop = page.locator("[data-testid=stImage] img").first
            expect(crop).to_be_visible()
            shown, natural = crop.evaluate("i => [i.clientWidth, i.naturalWidth]")
            assert shown / natural * 1100 / 612 >= 1.2, (shown, natural)

            # override it, first without the comment it needs: the choices stay
            page.get_by_text("Override", exact=True).click()
            label_box = page.get_by_label("New label (for an override)")
            label_box.click()
            new_label = page.get_by_role("option").first.inner_text().strip()
            page.get_by_role("option").first.click()
            record = page.get_by_role("button", name="Record decision", exact=True)
            record.click()
            expect(page.get_by_text("Say why you override the model")).to_be_visible()
            _settle(page)
            expect(label_box).to_have_value(new_label)

            # meanwhile a colleague comments on the sentence: Alice's decision is not saved,
            # and what she typed is still there to send again
            result_id = int(re.search(r"result=(\d+)", page.url).group(1))
            with ResultStore.from_settings(settings) as store:
                store.add_review(
                    result_id,
                    "comment",
                    "Bob Reviewer (bob)",
                    expected_previous=None,
                    sentence_index=index,
                    comment="Check the note on provisions.",
                )
            comment_box = page.get_by_label("Comment (required for an override")
            comment_box.fill(COMMENT)
            record.click()
            expect(page.get_by_text("Not saved: Bob Reviewer (bob) commented")).to_be_visible()
            _settle(page)
            expect(comment_box).to_have_value(COMMENT)
            record.click()
            expect(page.get_by_text("Recorded: Alice Auditor (alice) overrode")).to_be_visible()
            _settle(page)
            expect(comment_box).to_have_value("")  # saved: the form starts afresh
            _settle(page)
            _shot(page, "4_review_override")

            # download the workpaper: its name carries the model version
            with page.expect_download(timeout=SLOW_MS) as download:
                page.get_by_role("button", name="Workpaper (Excel)", exact=True).click()
            name = download.value.suggested_filename
            model_part = re.sub(r"[^\w.-]+", "_", model.name)
            assert name.startswith("annual_report_") and name.endswith(
                f"_{model_part}-unregistered-{digest[:8]}.xlsx"
            ), name
            saved = tmp_path / name
            download.value.save_as(saved)

            # every page shows the model version
            for title in ("Runs", "Models"):
                page.get_by_role("link", name=title).click()
                expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
                _settle(page)
                expect(sidebar).to_contain_text(f"unregistered (sha256 {digest[:8]}…)")
                _shot(page, f"5_{title.lower()}")
        finally:
            browser.close()

    book = openpyxl.load_workbook(saved)
    log = [r for r in book["Review log"].iter_rows(values_only=True) if COMMENT in r]
    assert len(log) == 1
    assert {"Alice Auditor (alice)", "override", index, new_label} <= set(log[0])
    rows = [
        r
        for r in book["Sentences"].iter_rows(values_only=True)
        if r and r[0] == index and COMMENT in str(r)
    ]
    assert len(rows) == 1 and "overridden" in rows[0] and new_label in rows[0]


def test_an_html_filing_is_shown_highlighted_without_running_its_scripts(
    server, chromium, tmp_path
):
    """Upload an inline-XBRL filing whose markup carries a script, an event handler and an
    external image; the review screen shows the sentence marked in the filing, and none of
    them runs or loads."""
    from ixbrl import BOLD, END, fact, filing
    from playwright.sync_api import expect, sync_playwright

    evil = (
        f"{BOLD}Outlook{END}"
        "<script>window.__pwned = 1; document.title = 'PWNED'</script>"
        '<div onmouseover="window.__pwned = 2" style="color:#222">'
        "<span>We expect revenue of $"
        + fact("us-gaap:Revenues", "40", scale="9", format="ixt:num-dot-decimal", id="f1")
        + ' billion next year.</span><img src="http://evil.example/pixel.png" '
        'onerror="window.__pwned = 3"/></div>'
    )
    upload = tmp_path / "acme-10k.htm"
    upload.write_bytes(filing([evil]))
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=chromium,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 2000},
        )
        outside: list[str] = []  # every request that left the app's server
        try:
            page = browser.new_page()
            page.set_default_timeout(60_000)
            page.on(
                "request",
                lambda r: outside.append(r.url) if "127.0.0.1" not in r.url else None,
            )
            page.goto(server)
            page.get_by_label("User name").fill("alice")
            page.get_by_label("Password", exact=True).fill("correct horse battery")
            page.get_by_role("button", name="Sign in", exact=True).click()
            expect(page.get_by_role("heading", name="Analyze reports")).to_be_visible(
                timeout=SLOW_MS
            )
            page.locator("input[type=file]").set_input_files(str(upload))
            expect(page.get_by_text("acme-10k.htm").first).to_be_visible(timeout=SLOW_MS)
            page.get_by_role("button", name="Analyze", exact=True).click()
            expect(page.get_by_text("1 document: 1 ok, 0 partial, 0 failed")).to_be_visible(
                timeout=SLOW_MS
            )
            _settle(page)
            page.get_by_role("button", name="Review acme-10k.htm", exact=True).click()
            _settle(page)
            page.get_by_role("tab", name="Sentences").click()
            _settle(page)
            page.get_by_label("Open sentence").click()
            page.get_by_role("option", name=re.compile("We expect revenue")).click()
            _settle(page)
            mark = page.locator(".sesame-filing mark").first
            expect(mark).to_be_visible(timeout=SLOW_MS)
            expect(page.locator(".sesame-filing")).to_contain_text(
                "We expect revenue of $40 billion next year."
            )
            expect(page.get_by_text("Tagged facts (inline XBRL)")).to_be_visible(timeout=SLOW_MS)
            _shot(page, "6_review_html_filing")
            page.locator(".sesame-filing").hover()  # the handler would fire here
            page.wait_for_timeout(500)
            assert page.evaluate("() => window.__pwned") is None
            assert "PWNED" not in page.title()
            assert page.locator("[onmouseover], [onerror], .sesame-filing img").count() == 0
        finally:
            browser.close()
    # the filing's image was never fetched (Streamlit's own icon font may be: not the filing's)
    assert not [u for u in outside if "evil.example" in u], outside


def test_sign_in_is_throttled_says_signed_out_and_follows_the_link(
    server, chromium, tmp_path, tiny_model_dir
):
    # two stored documents; the link of the older one is opened before signing in
    from playwright.sync_api import expect, sync_playwright

    from app.config import load_settings
    from app.pipeline import Analyzer
    from app.store import ResultStore

    settings = load_settings(data_dir=tmp_path / "data", scoring={"model_dir": tiny_model_dir})
    analyzer = Analyzer.from_settings(settings)
    pdf = write_clean_report(tmp_path / "first.pdf").read_bytes()
    first = analyzer.analyze(pdf, file_name="first.pdf")
    doc = first.document.model_copy(update={"doc_id": "f" * 64, "file_name": "second.pdf"})
    # what a client or engagement field holds is shown as text, never as a link
    linked = {"client": "Acme, ir@acme.example", "engagement": "http://evil.example/phish"}
    second = first.model_copy(update={"document": doc, **linked})
    with ResultStore.from_settings(settings) as store:
        ids = [store.save_result(r) for r in (first, second)]
    add_user(tmp_path / "data" / "users.toml", "bob", "bob's own horse", name="Bob", rounds=4)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.set_default_timeout(60_000)
            page.goto(f"{server}/review?result={ids[0]}")
            password = page.get_by_label("Password", exact=True)

            # a wrong password: said, and not left in the field
            page.get_by_label("User name").fill("alice")
            password.fill("wrong horse")
            page.get_by_role("button", name="Sign in", exact=True).click()
            expect(page.get_by_text("The user name or password is wrong.")).to_be_visible()
            expect(password).to_have_value("")

            # the right one opens the linked document, not the newest
            password.fill("correct horse battery")
            page.get_by_role("button", name="Sign in", exact=True).click()
            expect(page.get_by_role("heading", name="Review", exact=True)).to_be_visible(
                timeout=SLOW_MS
            )
            expect(page.get_by_role("heading", name="first.pdf", level=3)).to_be_visible()

            # signed out: the screen says so; signing in again comes back to the same link
            page.get_by_role("button", name="Log out", exact=True).click()
            expect(page.get_by_text("You are signed out.")).to_be_visible()
            page.goto(f"{server}/review?result={ids[1]}")
            page.get_by_label("User name").fill("alice")
            password.fill("correct horse battery")
            page.get_by_role("button", name="Sign in", exact=True).click()
            expect(page.get_by_role("heading", name="Review", exact=True)).to_be_visible()
            expect(page.get_by_role("heading", name="second.pdf", level=3)).to_be_visible()
            main = page.get_by_test_id("stMain")
            expect(main).to_contain_text("evil.example/phish")
            expect(main).to_contain_text("acme.example")
            expect(main.locator("a[href*='example']")).to_have_count(0)
            page.get_by_role("button", name="Log out", exact=True).click()

            # five wrong passwords lock the name: then even the right one is refused
            for _ in range(5):
                page.get_by_label("User name").fill("bob")
                password.fill("not bob's horse")
                page.get_by_role("button", name="Sign in", exact=True).click()
                _settle(page)
            expect(page.get_by_text("Too many failed sign-ins").first).to_be_visible()
            page.get_by_label("User name").fill("bob")
            password.fill("bob's own horse")
            page.get_by_role("button", name="Sign in", exact=True).click()
            _settle(page)
            expect(page.get_by_text("Too many failed sign-ins").first).to_be_visible()
            expect(page.get_by_role("heading", name="sesame: sign in")).to_be_visible()
        finally:
            browser.close()


def test_a_small_upload_shows_drift_not_tested_never_no_drift(
    server, chromium, tmp_path, tiny_model_dir
):
    """With a reference for the model, a 15-sentence upload is too small to test: the Analyze
    page and the Monitoring headline say "not tested", with the count and the minimum."""
    from playwright.sync_api import expect, sync_playwright

    from app.config import load_settings
    from models.monitoring import make_reference

    (tmp_path / "reference.txt").write_text(
        "\n".join(f"Revenue in segment {i} rose {i % 9 + 1}% on the year." for i in range(60)),
        encoding="utf-8",
    )
    settings = load_settings(data_dir=tmp_path / "data", scoring={"model_dir": tiny_model_dir})
    make_reference(settings, texts=tmp_path / "reference.txt")
    report = write_clean_report(tmp_path / "small_report.pdf")
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=chromium,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 2000},
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(60_000)
            page.goto(server)
            page.get_by_label("User name").fill("alice")
            page.get_by_label("Password", exact=True).fill("correct horse battery")
            page.get_by_role("button", name="Sign in", exact=True).click()
            expect(page.get_by_role("heading", name="Analyze reports")).to_be_visible(
                timeout=SLOW_MS
            )
            page.locator("input[type=file]").set_input_files(str(report))
            expect(page.get_by_text("small_report.pdf").first).to_be_visible(timeout=SLOW_MS)
            page.get_by_role("button", name="Analyze", exact=True).click()
            expect(page.get_by_text("1 document: 1 ok, 0 partial, 0 failed")).to_be_visible(
                timeout=SLOW_MS
            )
            _settle(page)
            main = page.get_by_test_id("stMain")
            verdict = re.compile(r"drift not tested \((\d+) sentences, needs 30\)")
            expect(main.get_by_text(verdict)).to_be_visible()
            n = int(verdict.search(main.inner_text()).group(1))
            assert 0 < n < 30
            assert "no drift against" not in main.inner_text()
            _shot(page, "drift_not_tested_analyze")

            page.get_by_role("link", name="Monitoring").click()
            _settle(page)
            expect(main.get_by_text("1 report · 0 with drift · 1 not tested")).to_be_visible()
            expect(main.get_by_text("The latest run was not tested")).to_be_visible()
            _shot(page, "drift_not_tested_monitoring")
        finally:
            browser.close()


def _stored_report(tmp_path: Path, tiny_model_dir: Path):
    """The clean report analyzed and stored in the server's data directory: (settings, id,
    result), with Bob as a second user."""
    from app.config import load_settings
    from app.pipeline import Analyzer
    from app.store import ResultStore
    from app.ui.documents import keep_pdf

    settings = load_settings(data_dir=tmp_path / "data", scoring={"model_dir": tiny_model_dir})
    pdf = write_clean_report(tmp_path / "annual_report.pdf").read_bytes()
    result = Analyzer.from_settings(settings).analyze(pdf, file_name="annual_report.pdf")
    keep_pdf(settings, pdf)
    with ResultStore.from_settings(settings) as store:
        result_id = store.save_result(result)
    add_user(
        tmp_path / "data" / "users.toml", "bob", "bob's own horse", name="Bob Reviewer", rounds=4
    )
    return settings, result_id, result


def _sign_in_on(page, url: str, login: str, password: str) -> None:
    """Open a link signed out, sign in there, and wait for the Review page it points at."""
    from playwright.sync_api import expect

    page.goto(url)
    page.get_by_label("User name").fill(login)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Review", exact=True)).to_be_visible(timeout=SLOW_MS)
    _settle(page)


def _open_sentence(page, index: int) -> None:
    """Open a sentence on the Sentences tab by its number."""
    from playwright.sync_api import expect

    page.get_by_label("Open sentence").click()
    page.get_by_role("option", name=re.compile(rf"^#{index} ·")).click()
    expect(page.get_by_role("heading", name=f"Sentence {index}", exact=True)).to_be_visible()
    _settle(page)


def test_a_reviewer_overriding_back_opens_a_dispute_that_is_marked_and_counted(
    server, chromium, tmp_path, tiny_model_dir
):
    from playwright.sync_api import expect, sync_playwright

    from app.reviewing import flagged_indices
    from app.store import ResultStore

    settings, result_id, result = _stored_report(tmp_path, tiny_model_dir)
    index = next(
        i for i in flagged_indices(result.scores) if result.sentences[i].kind == "sentence"
    )
    model_label = next(s.label for s in result.scores if s.sentence_index == index)
    with ResultStore.from_settings(settings) as store:  # the preparer, in her own session
        store.add_review(
            result_id,
            "override",
            "Alice Auditor (alice)",
            expected_previous=None,
            sentence_index=index,
            label="neutral",
            comment="Boilerplate.",
        )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            page.set_default_timeout(60_000)
            _sign_in_on(page, f"{server}/review?result={result_id}", "bob", "bob's own horse")
            main = page.get_by_test_id("stMain")
            expect(main).to_contain_text("1 overridden); 0 open disputes", timeout=SLOW_MS)

            # the reviewer overrides the preparer back to the model's label
            page.get_by_role("tab", name="Sentences").click()
            _settle(page)
            _open_sentence(page, index)
            page.get_by_text("Override", exact=True).click()
            page.get_by_label("New label (for an override)").click()
            page.get_by_role("option", name=model_label, exact=True).click()
            page.get_by_label("Comment (required for an override").fill("The model's label stands.")
            page.get_by_role("button", name="Record decision", exact=True).click()
            expect(page.get_by_text("Recorded: Bob Reviewer (bob) overrode")).to_be_visible()
            _settle(page)
            expect(
                main.get_by_text(
                    f"Disputed: Alice Auditor (alice): neutral, Bob Reviewer (bob): {model_label}"
                )
            ).to_be_visible()
            expect(page.get_by_text("Resolve dispute", exact=True)).to_be_visible()

            # the table marks it: the "disputed" filter finds it and nothing else
            page.get_by_label("Review status").click()
            page.get_by_role("option", name="disputed", exact=True).click()
            _settle(page)
            expect(main.get_by_text("1 of 15 sentences.")).to_be_visible()
            _shot(page, "dispute_sentence")

            # counted on the Summary and listed on the Sign-off tab, which refuses to sign
            page.get_by_role("tab", name="Summary").click()
            _settle(page)
            expect(main).to_contain_text("; 1 open dispute.")
            page.get_by_role("tab", name="Sign-off and review log").click()
            _settle(page)
            expect(main).to_contain_text("1 open dispute")
            expect(main.get_by_text("Open disputes", exact=True)).to_be_visible()
            _shot(page, "dispute_signoff")
        finally:
            browser.close()


def test_sign_off_is_refused_with_an_unreviewed_flagged_sentence_and_accepted_after_review(
    server, chromium, tmp_path, tiny_model_dir
):
    from playwright.sync_api import expect, sync_playwright

    from app.reviewing import flagged_indices
    from app.store import ResultStore

    settings, result_id, result = _stored_report(tmp_path, tiny_model_dir)
    flagged = flagged_indices(result.scores)
    n, last = len(flagged), flagged[-1]
    with ResultStore.from_settings(settings) as store:  # a colleague reviewed all but one
        for index in flagged[:-1]:
            store.add_review(
                result_id,
                "agree",
                "Bob Reviewer (bob)",
                expected_previous=None,
                sentence_index=index,
            )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            page.set_default_timeout(60_000)
            _sign_in_on(
                page, f"{server}/review?result={result_id}", "alice", "correct horse battery"
            )
            main = page.get_by_test_id("stMain")
            page.get_by_role("tab", name="Sign-off and review log").click()
            _settle(page)
            expect(main).to_contain_text(
                f"{n - 1} of {n} flagged sentences reviewed ({n} required); 0 open disputes"
            )
            page.get_by_text("Sign off as preparer", exact=True).click()
            record = page.get_by_role("button", name="Record", exact=True)
            record.click()
            expect(
                page.get_by_text(f"Sign-off refused: 1 of {n} flagged sentences have no decision")
            ).to_be_visible()
            _settle(page)
            _shot(page, "signoff_refused")

            # review the last flagged sentence, then the same sign-off is accepted
            page.get_by_role("tab", name="Sentences").click()
            _settle(page)
            _open_sentence(page, last)
            page.get_by_text("Agree", exact=True).click()
            page.get_by_role("button", name="Record decision", exact=True).click()
            expect(page.get_by_text("Recorded: Alice Auditor (alice) agreed")).to_be_visible()
            _settle(page)
            page.get_by_role("tab", name="Sign-off and review log").click()
            _settle(page)
            expect(main).to_contain_text(f"{n} of {n} flagged sentences reviewed")
            page.get_by_text("Sign off as preparer", exact=True).click()
            record.click()
            expect(
                page.get_by_text("Recorded: Alice Auditor (alice) signed off as preparer.")
            ).to_be_visible()
            _settle(page)
            _shot(page, "signoff_accepted")
        finally:
            browser.close()
    with ResultStore.from_settings(settings) as store:
        signed = [a.action for a in store.reviews(result_id=result_id) if a.sentence_index is None]
    assert signed == ["signoff_preparer"]
