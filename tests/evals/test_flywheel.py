"""`streamdesk eval flywheel`: the simulated reviewer, the report, and one tiny real run of the whole loop."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from evals import flywheel
from streamdesk import db
from streamdesk.audit import service as audit
from streamdesk.config import reset_settings
from streamdesk.feedback import service as feedback
from streamdesk.training import registry, service, tool_scorer
from streamdesk.training.exceptions import TrainingConfigError
from streamdesk.training.tool_scorer import RoutedTicket


@pytest.fixture
def conn(clean_db: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the emptied session database (the flywheel commits as it goes)."""
    with db.connect(clean_db, autocommit=True) as connection:
        yield connection


def ticket(n: int, tool: str = "cancel_pending_order") -> RoutedTicket:
    return RoutedTicket(id=f"bitext-cancel_order-{n}", source="bitext", text=f"cancel it {n}", tool=tool)


@pytest.mark.parametrize(
    ("chosen", "edit_share", "verdict"),
    [
        ("cancel_pending_order", 0.0, "accepted"),
        ("cancel_pending_order", 1.0, "accepted"),
        ("get_order_details", 0.0, "rejected"),
        ("get_order_details", 1.0, "edited"),
        ("reply", 1.0, "edited"),
    ],
)
def test_simulated_reviewer(chosen: str, edit_share: float, verdict: str) -> None:
    assert flywheel.simulated_verdict(ticket(1), chosen_tool=chosen, edit_share=edit_share, seed=42) == verdict


def test_simulated_reviewer_is_seeded_and_splits_wrong_drafts() -> None:
    def verdicts(seed: int) -> list[str]:
        return [
            flywheel.simulated_verdict(ticket(n), chosen_tool="reply", edit_share=0.5, seed=seed) for n in range(400)
        ]

    assert verdicts(1) == verdicts(1) and verdicts(1) != verdicts(2)
    counts = Counter(verdicts(1))
    assert set(counts) == {"edited", "rejected"} and 150 < counts["edited"] < 250


def metrics(routing: float, recall: float, **intents: float) -> flywheel.Metrics:
    return flywheel.Metrics(
        routing_accuracy=routing, action_recall=recall, routing_by_intent=intents, action_recall_by_tool={}
    )


def test_regression_set_and_report() -> None:
    base, sft, kto = metrics(0.2, 0.1, cancel_order=0.2), metrics(0.9, 0.6, cancel_order=1.0), metrics(0.95, 0.6)
    assert sft.regression_set() == {"routing_accuracy": 0.9, "action_recall": 0.6, "routing_accuracy/cancel_order": 1.0}
    report = flywheel.FlywheelReport(
        base=base,
        sft=sft,
        kto=kto,
        regressions=[],
        sft_version="v1",
        kto_version="v2",
        kto_status="promoted",
        gate={"passed": True, "reasons": []},
        feedback={},
        data={},
        timing_s={"total": 12.345},
    )
    line = report.to_json()
    assert line["routing_accuracy"] == {"base": 0.2, "sft": 0.9, "kto": 0.95}
    assert line["action_recall"] == {"base": 0.1, "sft": 0.6, "kto": 0.6}
    assert line["regressions"] == [] and line["target_met"] is True and line["timing_s"] == {"total": 12.3}
    report.regressions = ["action_recall"]
    assert report.to_json()["target_met"] is False
    report.regressions, report.kto = [], None
    assert report.to_json()["routing_accuracy"]["kto"] is None and report.to_json()["target_met"] is False


def test_the_seeds_report_gives_each_seeds_numbers_and_regressions() -> None:
    def report(seed: int, kto: float, regressions: list[str]) -> flywheel.FlywheelReport:
        return flywheel.FlywheelReport(
            base=metrics(0.2, 0.1), sft=metrics(0.7, 0.5), kto=metrics(kto, 0.5), regressions=regressions,
            sft_version="v1", kto_version="v2", kto_status="promoted", gate=None, feedback={}, data={}, seed=seed,
        )  # fmt: skip

    reports = [report(42, 0.75, []), report(7, 0.6, ["action_recall"])]
    assert flywheel.seed_line(reports[0]) == (
        "seed 42: routing_accuracy 0.200 / 0.700 / 0.750; action_recall 0.100 / 0.500 / 0.500 (base / sft / kto); "
        "regressions []"
    )
    summary = flywheel.seeds_summary(reports)
    assert summary["seeds"] == [42, 7] and summary["regressions"] == {"42": [], "7": ["action_recall"]}
    assert summary["runs"]["42"]["routing_accuracy"] == {"base": 0.2, "sft": 0.7, "kto": 0.75}
    assert summary["target_met"] is False
    assert flywheel.seeds_summary(reports[:1])["target_met"] is True
    assert flywheel.SEEDS[:3] == (42, 7, 1234)


@pytest.mark.parametrize(
    ("change", "word"),
    [({"eval_per_intent": 0}, "per-intent"), ({"edit_share": 1.5}, "edit_share"), ({"tau_limit": 0}, "tau_limit")],
)
def test_bad_options_are_refused(change: dict[str, object], word: str, tmp_path: Path) -> None:
    with pytest.raises(TrainingConfigError, match=word):
        flywheel.FlywheelOptions(shared_data=tmp_path, **change)  # type: ignore[arg-type]


def test_heldout_tickets_are_never_training_tickets(shared_data: Path) -> None:
    options = flywheel.FlywheelOptions(shared_data=shared_data)
    heldout, sft_tickets, feedback_tickets = flywheel.load_heldout(options)
    assert (len(heldout.bitext), len(heldout.tau_test)) == (80, 40)
    held = tool_scorer.unique_texts(heldout.bitext) | tool_scorer.unique_texts(heldout.tau_test)
    assert not held & (tool_scorer.unique_texts(sft_tickets) | tool_scorer.unique_texts(feedback_tickets))
    assert len([t for t in sft_tickets if t.source == "tau2"]) == 67


def test_each_run_gets_a_fresh_migrated_database_dropped_afterwards(database_url: str) -> None:
    with flywheel.run_database(server_url=database_url) as url, db.connect(url, autocommit=True) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
        assert name.startswith("streamdesk_flywheel_")
        assert conn.execute("SELECT count(*) FROM adapter_versions").fetchone() == (0,)
    with db.connect(database_url, autocommit=True) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None


@pytest.mark.slow
def test_a_tiny_flywheel_runs_the_whole_loop(
    conn: psycopg.Connection, shared_data: Path, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMDESK_TRAINING__GENERAL_TEXTS", "1")
    monkeypatch.setenv("STREAMDESK_TRAINING__MIN_HELDOUT_PER_CLASS", "1")
    reset_settings()
    options = flywheel.FlywheelOptions(
        shared_data=shared_data,
        eval_per_intent=2,
        train_per_intent=4,
        feedback_per_intent=4,
        tau_limit=4,
        sft_max_steps=2,
        sft_batch_size=4,
        max_steps=1,
        batch_size=4,
        max_length=96,
        threads=1,
    )

    report = flywheel.run(conn, options=options, work_dir=tmp_path)

    line = report.to_json()
    for metric in ("routing_accuracy", "action_recall"):
        assert set(line[metric]) == {"base", "sft", "kto"}
        assert all(0.0 <= value <= 1.0 for value in line[metric].values()), line
    assert line["data"] == {"bitext_heldout": 8, "tau2_test": 4, "sft_tickets": 20, "feedback_tickets": 20}
    assert isinstance(line["regressions"], list) and line["timing_s"]["total"] > 0
    assert report.kto_status in ("promoted", "candidate") and report.kto_version is not None, line

    sft_version = registry.get(conn, version=report.sft_version)
    assert sft_version.parent is None and sft_version.config["trainer"] == "sft"
    kto = registry.get(conn, version=report.kto_version)
    assert kto.parent == sft_version.version and kto.metrics["initialised_from"] == sft_version.version
    assert kto.gate is not None and kto.gate["checks"][0]["name"] == flywheel.REGRESSION_CHECK

    signals = conn.execute("SELECT kind, adapter_version FROM feedback").fetchall()
    assert len(signals) == 20 and {adapter for _, adapter in signals} == {sft_version.version}
    assert sum(line["feedback"][kind] for kind in ("accepted", "edited", "rejected")) == 20
    examples = [e for e in feedback.list_examples(conn) if e.source != "gold"]
    assert examples and all(e.adapter_version == sft_version.version for e in examples)
    assert any(e.trained_in == kto.version for e in examples)
    gold = [e for e in feedback.list_examples(conn) if e.source == "gold"]
    assert gold and all(e.trained_in == sft_version.version and e.label for e in gold)
    assert line["feedback"]["train"]["replay"] > 0

    promotions = [r for r in audit.records_after(conn, after_seq=0) if r.action == "model_promoted"]
    assert promotions[0].adapter_version == sft_version.version and promotions[0].actor_id == flywheel.ACTOR
    if report.kto_status == "promoted":
        assert registry.serving(conn, base_model=service.BASE_MODEL).version == kto.version  # type: ignore[union-attr]
        assert promotions[-1].adapter_version == kto.version
