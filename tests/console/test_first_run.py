"""`make run` as a newcomer meets it: the real `streamdesk up` creates the first admin, prints its token once,
and that token signs into the console in headless Chromium; the next `up` says where the token is kept."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamdesk.identity import first_run
from tests.console.test_browser import CHROMIUM, SCREENSHOTS
from tests.runtime.test_durability import Up

pytestmark = [pytest.mark.slow, pytest.mark.stack]
PRINTED_TOKEN = re.compile(r"^console  (http://\S+/console)  sign in as admin with token (\S+) ", re.MULTILINE)
KEPT_TOKEN = re.compile(r"^console  http://\S+/console  sign in as admin with the token kept in (\S+)$", re.MULTILINE)
NO_OPERATORS = {"STREAMDESK_IDENTITY__OPERATORS": "{}"}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Up]:
    """A `streamdesk up --no-agent` of its own; stopped with SIGINT after the test."""
    running = Up(tmp_path / "state")
    try:
        yield running
    finally:
        if running.process is not None and running.process.poll() is None:
            running.interrupt(timeout_s=120)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make system-deps)")
def test_sign_in_with_the_first_run_token_printed_by_up(stack: Up) -> None:
    from playwright.sync_api import expect, sync_playwright

    stack.start(agent=False, **NO_OPERATORS)
    stack.ready()
    printed = stack.wait_for(lambda: PRINTED_TOKEN.search(stack.output.read_text()), what="the first-run token")
    console_url, token = printed.group(1), printed.group(2)
    kept = stack.state_dir / first_run.TOKEN_FILE
    assert kept.read_text().strip() == token and stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert console_url == stack.url("/console")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"{console_url}/")
        expect(page).to_have_url(f"{console_url}/login")
        page.fill("#token", token)
        page.click("#sign-in")
        expect(page.locator(".flash.ok")).to_contain_text("Signed in as admin (admin)")
        expect(page).to_have_url(f"{console_url}/review")
        pages = page.locator("nav a[data-page]").evaluate_all("links => links.map(l => l.dataset.page)")
        assert pages == ["review", "approvals", "audit", "models", "ingest"], "the first admin sees every page"
        page.click('nav a[data-page="audit"]')
        expect(page.locator("#chain-status")).to_contain_text("Verified")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "first-run-admin.png"), full_page=True)
        browser.close()

    first_output = stack.interrupt()
    assert first_output.count(token) == 1, "the token is printed once"
    stack.start(agent=False, **NO_OPERATORS)
    stack.ready()
    again = stack.wait_for(lambda: KEPT_TOKEN.search(stack.output.read_text()), what="where the token is kept")
    assert again.group(1) == str(kept) and token not in stack.output.read_text()
    assert stack.query("SELECT operator_id, roles, revoked_at FROM operators") == [("admin", ["admin"], None)]
