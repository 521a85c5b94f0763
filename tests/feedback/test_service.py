"""Feedback in the real database: idempotent intake, relabelling with late signals, PII, caps, KTO export."""

from __future__ import annotations

import io
import json
import random
import re
from dataclasses import replace
from pathlib import Path

import psycopg

from streamdesk.feedback import service
from streamdesk.feedback.config import FeedbackSettings
from streamdesk.training import service as training
from streamdesk.training.kto_config import KTOTrainingConfig
from tests.factories import stored_draft, stored_ticket
from tests.feedback.factories import T0, answer, lookup_of, pii_record, signal, with_pii

SETTINGS = FeedbackSettings(heldout_percent=0)


def test_intake_is_idempotent_and_redacts_the_edit(conn: psycopg.Connection) -> None:
    edit = signal("A-1", "edited", edited_text="Sent to mei.davis@example.com at 12 Oak Street.")
    assert service.store_feedback(conn, events=[edit, signal("A-1", "csat", hours=2, rating=5)]) == 2
    assert service.store_feedback(conn, events=[edit]) == 0
    stored = service.signals_for(conn, answer_ids=["A-1"])["A-1"]
    assert [s.kind for s in stored] == ["edited", "csat"]
    assert stored[0].edited_text == "Sent to [EMAIL] at [ADDRESS]."


def test_late_signals_update_the_label_and_requeue_it(conn: psycopg.Connection, rows: list[dict[str, str]]) -> None:
    answers = [answer(1, rows[0])]
    service.store_feedback(conn, events=[signal("A-1", "accepted", hours=1)])
    stats = service.relabel(conn, answer_ids=["A-1"], lookup=lookup_of(answers), settings=SETTINGS)
    assert (stats.inserted, stats.updated) == (1, 0)
    (first,) = service.list_examples(conn)
    assert first.label is True and first.adapter_version == "kto-1" and first.ticket_id == "T-1"
    service.mark_trained(conn, digests=[first.content_digest], version="kto-1")
    unchanged = service.relabel(conn, answer_ids=["A-1"], lookup=lookup_of(answers), settings=SETTINGS)
    assert (unchanged.inserted, unchanged.updated) == (0, 0)
    assert service.list_examples(conn)[0].trained_in == "kto-1"

    service.store_feedback(conn, events=[signal("A-1", "reopened", hours=50)])
    stats = service.relabel(conn, answer_ids=["A-1"], lookup=lookup_of(answers), settings=SETTINGS)
    assert (stats.inserted, stats.updated) == (0, 1)
    (late,) = service.list_examples(conn)
    assert late.label is False and late.decided_by.startswith("reopened:") and late.trained_in is None
    assert len(late.signal_ids) == 2


def test_answers_without_a_row_are_counted_missing(conn: psycopg.Connection, rows: list[dict[str, str]]) -> None:
    service.store_feedback(conn, events=[signal("A-1", "thumbs_up"), signal("A-9", "thumbs_up")])
    stats = service.relabel(
        conn, answer_ids=service.answers_with_feedback(conn), lookup=lookup_of([answer(1, rows[0])]), settings=SETTINGS
    )
    assert (stats.answers, stats.missing_answers, stats.examples) == (2, 1, 1)


def test_pii_never_reaches_a_training_row(conn: psycopg.Connection, rows: list[dict[str, str]]) -> None:
    rng = random.Random(20261123)
    answers, events, secrets = [], [], []
    for n in range(40):
        pii = pii_record(rng)
        secrets.append(pii)
        base = answer(n, rows[n * 11])
        answers.append(
            replace(
                base, prompt=with_pii(base.prompt, pii, rng=rng), completion=with_pii(base.completion, pii, rng=rng)
            )
        )
        if n % 2:
            events.append(signal(base.answer_id, "edited", edited_text=with_pii("Corrected reply.", pii, rng=rng)))
        else:
            events.append(signal(base.answer_id, "thumbs_down"))
    service.store_feedback(conn, events=events)
    stats = service.relabel(
        conn, answer_ids=[a.answer_id for a in answers], lookup=lookup_of(answers), settings=SETTINGS
    )
    assert stats.examples == 60
    stored = conn.execute("SELECT string_agg(prompt || ' ' || completion, ' ') FROM training_examples").fetchone()[
        0
    ] + " ".join(r[0] for r in conn.execute("SELECT edited_text FROM feedback WHERE edited_text IS NOT NULL"))
    exported = io.StringIO()
    service.export_kto(conn, out=exported, lineage=True)
    digits_only = re.sub(r"\D", "", stored + exported.getvalue())
    for pii in secrets:
        for key in ("email", "phone", "card", "iban", "street", "city_line"):
            assert pii[key] not in stored and pii[key] not in exported.getvalue(), f"{key} {pii[key]!r} leaked"
        assert re.sub(r"\D", "", pii["card"]) not in digits_only
        assert pii["city_line"][-5:] not in stored
    assert "[EMAIL]" in stored and "[ADDRESS]" in stored and "[CARD]" in stored and "[PHONE]" in stored


def test_a_flood_of_bad_labels_from_one_customer_is_capped(
    conn: psycopg.Connection, rows: list[dict[str, str]]
) -> None:
    flood = [answer(n, rows[n * 7], customer="mallory") for n in range(120)]
    normal = [answer(1000 + n, rows[2000 + n * 13], customer=f"c{n}") for n in range(12)]
    events = [signal(a.answer_id, "thumbs_down", annotator="mallory") for a in flood]
    events += [signal(a.answer_id, "accepted", annotator=f"op{n % 3}") for n, a in enumerate(normal)]
    service.store_feedback(conn, events=events)
    answers = flood + normal
    service.relabel(conn, answer_ids=[a.answer_id for a in answers], lookup=lookup_of(answers), settings=SETTINGS)
    assert service.pending_balance(conn).undesirable == 120
    capped = FeedbackSettings(per_customer_cap=10, per_annotator_cap=50)
    data = training.training_set(conn, config=KTOTrainingConfig(), settings=capped)
    assert sum(e.customer_id == "mallory" for e in data.new) == 10
    assert sum(e.customer_id != "mallory" for e in data.new) == 12
    assert data.capped == 110


def test_export_is_trl_kto_format(conn: psycopg.Connection, rows: list[dict[str, str]]) -> None:
    answers = [answer(n, rows[n * 3]) for n in range(4)]
    service.store_feedback(
        conn,
        events=[signal("A-0", "accepted"), signal("A-1", "rejected"), signal("A-2", "edited", edited_text="Better.")],
    )
    service.relabel(conn, answer_ids=["A-0", "A-1", "A-2"], lookup=lookup_of(answers), settings=SETTINGS)
    out = io.StringIO()
    assert service.export_kto(conn, out=out) == 4
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert all(set(line) == {"prompt", "completion", "label"} for line in lines)
    assert all(line["prompt"][0]["role"] == "user" and line["completion"][0]["role"] == "assistant" for line in lines)
    assert sorted(line["label"] for line in lines) == [False, False, True, True]
    plain = io.StringIO()
    service.export_kto(conn, out=plain, conversational=False, lineage=True)
    first = json.loads(plain.getvalue().splitlines()[0])
    assert isinstance(first["prompt"], str) and first["lineage"]["policy_version"] == "labels-v1"


def test_relabel_reads_the_agents_answers_and_tickets(conn: psycopg.Connection, rows: list[dict[str, str]]) -> None:
    body = rows[0]["instruction"] + " You can reach me at mei.davis@example.com."
    ticket = stored_ticket(
        conn, "7", event_id="zd-7-1", occurred_at=T0, subject="Order status", body=body, customer_id="mei_davis_8935"
    )
    stored = stored_draft(conn, ticket, rows[0]["response"], adapter="kto-4", created_at=T0)
    accepted = signal("A-x", "accepted").model_copy(update={"answer_id": stored.answer_id, "ticket_id": "7"})
    service.store_feedback(conn, events=[accepted])
    stats = service.relabel(conn, answer_ids=service.answers_with_feedback(conn), settings=SETTINGS)
    assert (stats.missing_answers, stats.inserted) == (0, 1)
    (example,) = service.list_examples(conn)
    assert example.prompt.startswith("Order status\n\n") and "[EMAIL]" in example.prompt
    assert (example.answer_id, example.ticket_id, example.adapter_version) == (stored.answer_id, "7", "kto-4")
    assert example.customer_id == "mei_davis_8935" and example.label is True


def test_export_cli_writes_jsonl(conn: psycopg.Connection, rows: list[dict[str, str]], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from streamdesk.feedback.cli import feedback_app

    answers = [answer(n, rows[n]) for n in range(2)]
    service.store_feedback(conn, events=[signal("A-0", "thumbs_up"), signal("A-1", "thumbs_down")])
    service.relabel(conn, answer_ids=["A-0", "A-1"], lookup=lookup_of(answers), settings=SETTINGS)
    out = tmp_path / "kto.jsonl"
    result = CliRunner().invoke(feedback_app, ["export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(line)["label"] for line in out.read_text().splitlines()) == [False, True]
    balance = CliRunner().invoke(feedback_app, ["balance", "--json"])
    assert json.loads(balance.stdout)["total"] == 2
    table = CliRunner().invoke(feedback_app, ["balance"])
    assert table.exit_code == 0 and "pending feedback balance" in table.stdout


def test_relabel_cli_reports_json(conn: psycopg.Connection) -> None:
    from typer.testing import CliRunner

    from streamdesk.feedback.cli import feedback_app

    result = CliRunner().invoke(feedback_app, ["relabel", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"answers": 0, "missing_answers": 0, "examples": 0, "inserted": 0, "updated": 0}
    assert "relabelled" in CliRunner().invoke(feedback_app, ["relabel"]).stdout
