"""The learn worker end to end: feedback on the topic -> stored -> labelled -> retrain requested -> trained -> event."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from streamdesk.feedback import service as feedback
from streamdesk.kafka import Publisher
from streamdesk.runtime.supervisor import child_env, stop_process
from streamdesk.training import registry
from tests.factories import stored_draft, stored_ticket
from tests.feedback.factories import T0, signal
from tests.waiting import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def worker(
    conn: psycopg.Connection, topics_ready: str, clean_db: str, model_dir: Path, tmp_path: Path
) -> Iterator[Path]:
    log = tmp_path / "learn.log"
    env = child_env(
        KAFKA_BOOTSTRAP_SERVERS=topics_ready,
        DATABASE_URL=clean_db,
        STREAMDESK_STATE_DIR=str(tmp_path / "state"),
        STREAMDESK_AGENT__MODEL_DIR=str(model_dir),  # the converted model, not a second conversion in the state dir
        STREAMDESK_TRAINING__CHECK_INTERVAL_S="1",
        STREAMDESK_TRAINING__MIN_NEW_EXAMPLES="6",
        STREAMDESK_TRAINING__GENERAL_TEXTS="1",
        STREAMDESK_TRAINING__MIN_HELDOUT_PER_CLASS="1",
        STREAMDESK_FEEDBACK__HELDOUT_PERCENT="0",
        STREAMDESK_KTO__MAX_STEPS="1",
        STREAMDESK_KTO__MAX_LENGTH="64",
        STREAMDESK_KTO__THREADS="1",
    )
    code = "from streamdesk.training.worker import run_worker; run_worker()"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=out, stderr=subprocess.STDOUT)
    yield log
    stop_process(process, timeout_s=20)


def test_feedback_flows_to_a_trained_candidate(
    conn: psycopg.Connection, topics_ready: str, rows: list[dict[str, str]], worker: Path
) -> None:
    events = []
    for n in range(8):
        ticket = stored_ticket(
            conn,
            str(n),
            event_id=f"zd-{n}",
            occurred_at=T0,
            subject="Help",
            body=rows[n * 41]["instruction"],
            customer_id=f"c{n}",
        )
        stored = stored_draft(conn, ticket, rows[n * 41]["response"][:400], created_at=T0)
        kind = "accepted" if n % 2 else "rejected"
        events.append(signal(f"A-{n}", kind).model_copy(update={"answer_id": stored.answer_id, "ticket_id": str(n)}))
    with Publisher(topics_ready) as publisher:
        for event in events:
            publisher.publish(feedback.FEEDBACK_TOPIC, event.to_json(), key=event.answer_id)
        publisher.publish(feedback.FEEDBACK_TOPIC, b"{not json", key="bad", validate=False)

    def count(sql: str) -> int:
        row = conn.execute(sql).fetchone()
        return int(row[0]) if row else 0

    wait_for(lambda: count("SELECT count(*) FROM feedback") == 8, log=worker, what="feedback stored")
    wait_for(lambda: count("SELECT count(*) FROM dead_letters") == 1, log=worker, what="bad payload dead-lettered")
    wait_for(lambda: count("SELECT count(*) FROM training_examples") == 8, log=worker, what="examples labelled")
    versions = wait_for(lambda: registry.list_versions(conn), log=worker, what="a registered candidate")
    assert versions[0].metrics["new"] == 8 and versions[0].metrics["steps"] == 1
    run = wait_for(
        lambda: conn.execute("SELECT status, details FROM retrain_runs WHERE status = 'finished'").fetchone(),
        log=worker,
        what="retrain finished",
    )
    assert json.loads(json.dumps(run[1]))["version"] == versions[0].version
