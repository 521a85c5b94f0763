"""The bootstrap's resolved tickets become gold KTO rows that later retrains replay against forgetting."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
import pytest

from streamdesk.feedback import service as feedback
from streamdesk.feedback.config import FeedbackSettings
from streamdesk.training import service as training
from streamdesk.training import sft
from streamdesk.training.kto_config import KTOTrainingConfig
from streamdesk.training.tool_scorer import RoutedTicket
from tests.feedback.test_hygiene import example

SETTINGS = FeedbackSettings(heldout_percent=90)
"""Most digests would be held out: gold rows must never be."""


def ticket(n: int, text: str = "", tool: str = "cancel_pending_order", **arguments: str) -> RoutedTicket:
    return RoutedTicket(
        id=f"t-{n}", source="tau2", text=text or f"please help with order {n}", tool=tool, arguments=arguments
    )


@dataclass(frozen=True)
class Case:
    name: str
    tickets: list[RoutedTicket]
    rows: int
    absent: list[str] = field(default_factory=list)


CASES = [
    Case("one row per ticket", [ticket(1), ticket(2, tool="get_order_details")], 2),
    Case("the same ticket twice is one row", [ticket(1), ticket(1), ticket(3)], 2),
    Case(
        "PII is redacted from prompt and completion",
        [ticket(4, "I am mia.garcia2723@example.com, call +1 415 555 0132", "find_user_id_by_email", email="a@b.io")],
        1,
        absent=["mia.garcia2723@example.com", "555 0132", "a@b.io"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_gold_examples(case: Case) -> None:
    gold = sft.gold_examples(case.tickets, version="kto-1", settings=SETTINGS)

    assert len(gold) == case.rows
    for row in gold:
        assert (row.source, row.label, row.heldout, row.trained_in) == ("gold", True, False, "kto-1")
        assert row.answer_id == f"gold-{row.content_digest[:32]}" and row.decided_by == "bootstrap:kto-1"
        assert row.policy_version == sft.GOLD_POLICY and row.ticket_id.startswith("t-")
        assert not any(secret in row.prompt + row.completion for secret in case.absent)


def test_gold_rows_are_replayed_never_pending(conn: psycopg.Connection) -> None:
    gold = sft.gold_examples([ticket(n) for n in range(40)], version="kto-1", settings=SETTINGS)
    assert feedback.store_gold(conn, examples=gold, version="kto-1") == 40
    assert feedback.store_gold(conn, examples=gold, version="kto-1") == 0
    assert feedback.pending_balance(conn).total == 0

    new = [example(n, label=n % 2 == 0) for n in range(20)]
    feedback.upsert_examples(conn, examples=new)
    config = KTOTrainingConfig(replay_fraction=0.5)
    data = training.training_set(conn, config=config, settings=FeedbackSettings())

    assert {e.answer_id for e in data.new} == {e.answer_id for e in new}
    assert len(data.replay) == 10 and all(e.source == "gold" and e.trained_in == "kto-1" for e in data.replay)
    assert data.replay == training.training_set(conn, config=config, settings=FeedbackSettings()).replay
