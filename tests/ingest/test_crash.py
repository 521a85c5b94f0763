"""Crash test: SIGKILL the ingest worker at three random moments during a 2,000-event replay.

After the last restart the store must equal the expected final state exactly: 0 lost, 0 duplicated,
0 resurrected.
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from evals.bench.scaleout import check_ingest
from streamdesk.ingest import status as ingest_status
from streamdesk.seed.changes import generate_changes
from tests.ingest.conftest import IngestStack

pytestmark = [pytest.mark.slow, pytest.mark.stack]
SEED = 20261123
EVENTS = 2000
KILLS = 3


def test_store_equals_expected_state_after_three_sigkills(ingest_stack: IngestStack) -> None:
    stream = generate_changes(events=EVENTS, seed=SEED, late_events=40)
    rng = random.Random(SEED)

    def publish() -> None:
        with ingest_stack.publisher() as pub:
            for n, message in enumerate(stream.messages):
                pub.publish(message.topic, message.value, key=message.key, headers=message.headers)
                if n % 50 == 49:
                    pub.flush()
                    time.sleep(0.25)

    producer = threading.Thread(target=publish)
    started = time.monotonic()
    producer.start()
    kill_at = sorted(rng.uniform(3.0, 25.0) for _ in range(KILLS))
    lag_at_kill = []
    for moment in kill_at:
        time.sleep(max(0.0, started + moment - time.monotonic()))
        ingest_stack.kill_worker()
        lag_at_kill.append(sum(ingest_status.ingest_lag(ingest_stack.bootstrap_servers).values()))
        ingest_stack.start_worker()
    producer.join()

    stable: dict[str, object] = {}

    def settled() -> bool:
        if sum(ingest_status.ingest_lag(ingest_stack.bootstrap_servers).values()) != 0:
            return False
        snapshot = ingest_stack.query("SELECT count(*), max(updated_at) FROM entities")[0] + tuple(
            ingest_stack.query("SELECT count(*), max(updated_at) FROM chunks")[0]
        )
        if stable.get("snapshot") != snapshot:
            stable.update(snapshot=snapshot, since=time.monotonic())
            return False
        return time.monotonic() - float(stable["since"]) > 4.0  # type: ignore[arg-type]

    ingest_stack.wait_for(settled, timeout_s=600, what="ingest to drain after the kills")

    check = check_ingest(ingest_stack.database_url, stream)
    assert ingest_stack.worker is not None and ingest_stack.worker.poll() is None, "worker must be running"
    assert not check.lost, f"lost: {check.lost[:10]}"
    assert not check.resurrected, f"resurrected: {check.resurrected[:10]}"
    assert not check.duplicated, f"duplicated: {check.duplicated[:10]}"
    assert not check.phantom, f"phantom rows: {check.phantom[:10]}"
    assert not check.wrong, f"wrong final state: {check.wrong[:5]}"
    assert len(stream.expected_entities) + len(stream.expected_documents) > 200
    assert sum(1 for lag in lag_at_kill if lag > 0) >= 2, f"kills must land mid-stream; lag at kills: {lag_at_kill}"
