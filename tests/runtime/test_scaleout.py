"""`streamdesk bench scaleout`, small: two ingest and two agent workers, one SIGKILLed and one added mid-run.

The real stack (embedded broker and database, `up`'s supervisor, Faust workers): the store must end equal to
the change stream's final state and every ticket event must have one answer whose writes happened once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.bench import scaleout

pytestmark = [pytest.mark.slow, pytest.mark.stack]


def test_a_kill_and_an_added_worker_lose_and_duplicate_nothing(model_dir: Path, tmp_path: Path) -> None:
    figures = scaleout.run(workers=2, events=300, tickets=30, disruptions=2, publish_s=15, timeout_s=600, logs=tmp_path)
    logs = "\n".join(f"{log.name}: {log.read_text(errors='replace')[-1500:]}" for log in tmp_path.glob("*.log"))
    assert figures["settled"], f"the groups never caught up: {figures}\n{logs}"
    assert figures["kills"] == {"sigkill": 1, "added": 1}
    assert [d["worker"] for d in figures["disruptions"]] in (["ingest", "agent-3"], ["ingest-2", "agent-3"])
    assert figures["workers_at_end"] == {"ingest": 2, "agent": 3}
    assert figures["partitions"] == {"ingest": 8, "agent": 8}
    assert figures["events"] >= 300
    for name in ("lost", "duplicated", "resurrected", "phantom", "wrong"):
        assert figures[name] == 0, f"{name}: {figures}"
    assert figures["tickets"] == figures["answered"] == 30
    assert figures["answers_duplicated"] == 0 and figures["writes_duplicated"] == 0, figures
