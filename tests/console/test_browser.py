"""Headless Chromium (Debian's, driven by Playwright) against the real app, database and broker.

A supervisor signs in, edits and accepts a draft and approves a pending refund; an auditor then
checks the audit chain, the models and ingest health. Screenshots of every page go to
`artifacts/screenshots/`; `readme-console.png` there is the README's `docs/console.png` (copy it over to refresh it,
so a test run never changes a tracked file).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import uvicorn
from confluent_kafka import Consumer

from streamdesk.api.app import create_app
from streamdesk.audit import service as audit
from streamdesk.config import get_settings, reset_settings
from streamdesk.feedback import service as feedback
from streamdesk.policy import approvals
from streamdesk.runtime.embedded import free_port
from tests.console.conftest import (
    OPERATORS,
    TICKET_REF,
    seed_adapter,
    seed_dead_letter,
    seed_documents,
    seed_draft,
    seed_pending,
)

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
README_SHOT = SCREENSHOTS / "readme-console.png"
EDITED = "Your refund of $54.04 is on its way to your original card; it usually shows within 3-5 business days."


@pytest.fixture
def server(conn: psycopg.Connection, topics_ready: str, operators: dict[str, dict[str, object]]) -> Iterator[str]:
    """The real app (`create_app`) served by uvicorn in a thread; its base URL."""
    reset_settings()
    port = free_port()
    app = create_app(get_settings())
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uvicorn_server.started:
        assert time.monotonic() < deadline, "uvicorn did not start in 30 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uvicorn_server.should_exit = True
    thread.join(timeout=10)
    assert app.state.publisher is None, "the lifespan closes the API's publisher at shutdown"


def published_feedback(bootstrap: str, *, answer_id: str) -> dict[str, object]:
    """The feedback event for `answer_id` on the `feedback` topic."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "t-console", "auto.offset.reset": "earliest"})
    consumer.subscribe([feedback.FEEDBACK_TOPIC])
    try:
        for _ in range(60):
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                event = dict(json.loads(message.value()))
                if event["answer_id"] == answer_id:
                    return event
    finally:
        consumer.close()
    raise AssertionError("no feedback event was published")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make system-deps)")
def test_review_edit_accept_and_approve_in_a_browser(
    server: str, conn: psycopg.Connection, topics_ready: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    seed_documents(conn)
    draft = seed_draft(conn)
    action = seed_pending(conn)
    seed_dead_letter(conn)
    seed_adapter(conn, tmp_path)
    records_before = audit.verify(conn).checked
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.on("dialog", lambda dialog: dialog.accept())
        csp_violations: list[str] = []
        page.on(
            "console",
            lambda message: csp_violations.append(message.text) if "Content Security Policy" in message.text else None,
        )

        def shot(name: str) -> Path:
            path = SCREENSHOTS / f"{name}.png"
            page.screenshot(path=str(path), full_page=True)
            return path

        def sign_in(operator: str) -> None:
            page.goto(f"{server}/console/")
            expect(page).to_have_url(f"{server}/console/login")
            page.fill("#token", str(OPERATORS[operator]["token"]))
            page.click("#sign-in")
            expect(page.locator(".flash.ok")).to_contain_text(f"Signed in as {operator}")

        page.goto(f"{server}/")
        expect(page.locator("h1")).to_have_text("Sign in")
        shot("01-sign-in")
        sign_in("sam")

        expect(page).to_have_url(f"{server}/console/review")
        card = page.locator(f'[data-answer-id="{draft.answer_id}"]')
        expect(card).to_contain_text("Refund for my delivered order")
        expect(card.locator("table").first).to_contain_text("Returns and refunds policy")
        card.locator("details.trace summary").click()
        expect(card.locator("details.trace")).to_contain_text("get_order_details")
        README_SHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(README_SHOT), full_page=False)
        shot("02-review-queue")

        card.locator('[data-action="edit"]').click()
        card.locator("textarea.edit-box").fill(EDITED)
        shot("03-review-edit")
        card.locator('[data-action="save-edit"]').click()
        expect(page.locator(".flash.ok")).to_contain_text("edited; feedback recorded and audited")
        expect(page.locator(f'[data-answer-id="{draft.answer_id}"]')).to_have_count(0)
        shot("04-review-done")

        page.click('nav a[data-page="approvals"]')
        row = page.locator(f'tr[data-action-id="{action.id}"]')
        expect(row).to_contain_text("refund")
        shot("05-approvals")
        row.locator('[data-action="approve"]').click()
        expect(page.locator(".flash.ok")).to_contain_text("refund on zendesk:T-1001 approved")
        expect(page.locator("#decided-actions")).to_contain_text("approved")
        shot("06-approvals-done")

        page.click("text=Sign out")
        expect(page.locator(".flash.ok")).to_contain_text("Signed out")
        sign_in("ada")
        page.goto(f"{server}/console/audit?ticket={TICKET_REF}")
        expect(page.locator("#chain-status")).to_contain_text("Verified")
        expect(page.locator("#ticket-trail")).to_contain_text("answer_reviewed")
        expect(page.locator("#ticket-trail")).to_contain_text("approval")
        shot("07-audit")
        page.click('nav a[data-page="models"]')
        expect(page.locator("#retrain-runs")).to_contain_text("finished")
        page.wait_for_load_state("load")  # not wait_for_function: its string predicate is an eval the CSP refuses
        assert page.locator("img").evaluate_all("images => images.every(i => i.complete && i.naturalWidth > 0)")
        shot("08-models")
        page.click('nav a[data-page="ingest"]')
        expect(page.locator("#dead-letters")).to_contain_text("UnparseablePayloadError")
        expect(page.locator("#lag-total")).not_to_contain_text("unreachable")
        shot("09-ingest")
        page.goto(f"{server}/console/review")
        expect(page.locator("h1")).to_have_text("Access denied")
        shot("10-forbidden")
        browser.close()
    assert csp_violations == [], "the pages did something the console's Content-Security-Policy refuses"

    signals = feedback.signals_for(conn, answer_ids=[draft.answer_id])[draft.answer_id]
    assert [(s.kind, s.annotator_id, s.edited_text) for s in signals] == [("edited", "sam", EDITED)]
    assert published_feedback(topics_ready, answer_id=draft.answer_id)["kind"] == "edited"
    trail = audit.trail(conn, ticket_id=TICKET_REF)
    review = [r for r in trail if r.action == "answer_reviewed"]
    assert len(review) == 1 and review[0].decision == "edited" and review[0].actor_id == "sam"
    assert approvals.get_action(conn, action_id=action.id).status == "approved"
    report = audit.verify(conn)
    assert report.ok and report.checked == records_before + 2
    assert README_SHOT.stat().st_size < 300_000
