"""Delivering recorded replies to the Zendesk stand-in: once each, found again after a crash, refusals dead-lettered."""

from __future__ import annotations

import time

import psycopg

from streamdesk.delivery import service
from streamdesk.delivery.config import DeliverySettings
from streamdesk.delivery.service import Deliverer
from streamdesk.delivery.sinks import comment_body, stamp
from tests.delivery.conftest import Standin, auto_reply, delivery_row


def deliverer(url: str, settings: DeliverySettings) -> Deliverer:
    return Deliverer(database_url=url, settings=settings)


def test_an_auto_reply_is_one_public_comment_and_a_status_change(
    conn: psycopg.Connection, clean_db: str, standin: Standin, delivery_settings: DeliverySettings
) -> None:
    reply = auto_reply(1)
    service.enqueue(conn, replies=[reply])
    assert deliverer(clean_db, delivery_settings).deliver(reply.reply_id)
    (update,) = [r for r in standin.state.received if r["method"] == "PUT"]
    assert update["path"] == "/api/v2/tickets/9001.json" and update["status"] == 200
    assert update["body"] == {"ticket": {"comment": {"body": comment_body(reply), "public": True}, "status": "pending"}}
    assert standin.state.tickets[9001]["status"] == "pending"
    assert delivery_row(conn, reply.reply_id) | {"reason": None} == {
        "status": "delivered",
        "attempts": 1,
        "reason": None,
        "dead_letter_id": None,
    }
    found = service.get_delivery(conn, reply_id=reply.reply_id)
    assert found is not None and found.destination == "zendesk" and found.remote_ref


def test_a_redelivered_reply_posts_nothing_new(
    conn: psycopg.Connection, clean_db: str, standin: Standin, delivery_settings: DeliverySettings
) -> None:
    reply = auto_reply(2)
    worker = deliverer(clean_db, delivery_settings)
    assert service.enqueue(conn, replies=[reply]) == 1
    assert worker.deliver(reply.reply_id)
    assert service.enqueue(conn, replies=[reply]) == 0
    assert not worker.deliver(reply.reply_id)
    assert worker.deliver_due() == 0
    assert len(standin.state.comments()) == 1
    assert service.status_counts(conn) == {"delivered": 1, "auto_replies_waiting": 0}


def test_a_reply_posted_before_a_crash_is_found_by_its_stamp_not_posted_again(
    conn: psycopg.Connection, clean_db: str, standin: Standin, delivery_settings: DeliverySettings
) -> None:
    """The worker posted, then died before recording it: the row says `sending`; the comment is on the ticket."""
    reply = auto_reply(3)
    service.enqueue(conn, replies=[reply])
    conn.execute("UPDATE deliveries SET status = 'sending', attempts = 1 WHERE reply_id = %s", (reply.reply_id,))
    standin.state.ticket(9003)["comments"] += [
        {"id": n, "type": "Comment", "body": f"earlier comment {n}", "public": True} for n in range(120)
    ] + [{"id": 777, "type": "Comment", "body": comment_body(reply), "public": True}]
    worker = deliverer(clean_db, delivery_settings)
    assert worker.deliver(reply.reply_id)
    assert not [r for r in standin.state.received if r["method"] == "PUT"]
    gets = [r["path"] for r in standin.state.received if r["method"] == "GET"]
    assert gets == ["/api/v2/tickets/9003/comments.json"] * 2  # two pages of 100
    assert delivery_row(conn, reply.reply_id)["status"] == "delivered"
    found = service.get_delivery(conn, reply_id=reply.reply_id)
    assert found is not None and found.remote_ref == "777"
    assert stamp(reply.reply_id) in comment_body(reply)


def test_a_reply_the_helpdesk_refuses_is_dead_lettered_with_its_reason(
    conn: psycopg.Connection, clean_db: str, standin: Standin, delivery_settings: DeliverySettings
) -> None:
    reply = auto_reply(4)
    standin.state.ticket(9004)["status"] = "closed"
    service.enqueue(conn, replies=[reply])
    assert not deliverer(clean_db, delivery_settings).deliver(reply.reply_id)
    row = delivery_row(conn, reply.reply_id)
    assert row["status"] == "dead_lettered" and "HTTP 422" in str(row["reason"])
    assert "closed prevents ticket update" in str(row["reason"])
    letter = conn.execute(
        "SELECT topic, partition, stage, reason, error_type FROM dead_letters WHERE id = %s", (row["dead_letter_id"],)
    ).fetchone()
    assert letter is not None and letter[:3] == ("reply", -1, "delivery") and "HTTP 422" in letter[3]
    assert letter[4] == "DeliveryRefusedError"
    assert len(standin.state.comments()) == 0


def test_an_unreachable_helpdesk_leaves_the_reply_retrying(conn: psycopg.Connection, clean_db: str) -> None:
    settings = DeliverySettings(
        zendesk_url="http://127.0.0.1:9",
        zendesk_oauth_token="x",
        retry_for_s=0.3,
        retry_later_s=0.1,
    )
    reply = auto_reply(5)
    service.enqueue(conn, replies=[reply])
    assert not deliverer(clean_db, settings).deliver(reply.reply_id)
    row = delivery_row(conn, reply.reply_id)
    assert row["status"] == "retrying" and row["attempts"] == 1  # later tries look for the comment first
    assert "Connection refused" in str(row["reason"])


def test_a_rate_limited_reply_waits_as_retry_after_asks_then_goes_out_once(
    conn: psycopg.Connection, clean_db: str, standin: Standin, delivery_settings: DeliverySettings
) -> None:
    standin.state.busy = 1
    reply = auto_reply(7)
    service.enqueue(conn, replies=[reply])
    started = time.monotonic()
    worker = deliverer(clean_db, delivery_settings.model_copy(update={"retry_for_s": 5.0}))
    assert worker.deliver(reply.reply_id)
    assert time.monotonic() - started >= 1.0
    assert [r["status"] for r in standin.state.received if r["method"] == "PUT"] == [429, 200]
    assert len(standin.state.comments()) == 1
    assert delivery_row(conn, reply.reply_id)["attempts"] == 2


def test_the_sweep_delivers_a_retrying_reply_once_the_helpdesk_answers(
    conn: psycopg.Connection, clean_db: str, standin: Standin, delivery_settings: DeliverySettings
) -> None:
    reply = auto_reply(6)
    service.enqueue(conn, replies=[reply])
    conn.execute(
        "UPDATE deliveries SET status = 'retrying', attempts = 3, next_attempt_at = now() WHERE reply_id = %s",
        (reply.reply_id,),
    )
    assert deliverer(clean_db, delivery_settings).deliver_due() == 1
    assert len(standin.state.comments()) == 1
    assert delivery_row(conn, reply.reply_id)["status"] == "delivered"
