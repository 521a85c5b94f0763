"""The adapter registry in the real database: promotion, rollback (by hand and on live feedback), audit, events."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from streamdesk.audit import service as audit
from streamdesk.config import reset_settings
from streamdesk.feedback import service as feedback
from streamdesk.kafka import Publisher
from streamdesk.training import registry, service
from streamdesk.training.cli import models_app
from streamdesk.training.config import TrainingSettings
from streamdesk.training.exceptions import PromotionError
from streamdesk.training.models import AdapterVersion
from tests.feedback.factories import signal
from tests.topics import read_json

BASE = service.BASE_MODEL


def register(conn: psycopg.Connection, root: Path, n: int, *, parent: str | None = None) -> AdapterVersion:
    staging = root / f"staging-{n}"
    staging.mkdir(parents=True)
    (staging / "adapter_config.json").write_text("{}")
    return registry.register_candidate(
        conn,
        staging_dir=staging,
        adapters_dir=root / "adapters",
        base_model=BASE,
        parent=parent,
        dataset_digest=f"{n:064x}",
        config={"seed": n},
        metrics={"examples": n},
    )


def model_events(bootstrap: str) -> list[dict[str, object]]:
    return read_json(bootstrap, registry.MODEL_TOPIC, group="t-model")


def test_register_moves_the_folder_under_its_version(conn: psycopg.Connection, tmp_path: Path) -> None:
    first = register(conn, tmp_path, 1)
    assert first.version.startswith("kto-") and first.status == "candidate"
    assert Path(first.path) == tmp_path / "adapters" / first.version
    assert (Path(first.path) / "adapter_config.json").is_file() and not (tmp_path / "staging-1").exists()
    assert [v.version for v in registry.list_versions(conn)] == [first.version]


def test_promote_and_roll_back_are_audited_and_announced(
    conn: psycopg.Connection, tmp_path: Path, topics_ready: str
) -> None:
    v1, v2 = register(conn, tmp_path, 1), register(conn, tmp_path, 2)
    with Publisher(topics_ready) as publisher:
        registry.promote(conn, version=v1.version, actor="sam", actor_kind="user", publisher=publisher)
        registry.promote(conn, version=v2.version, actor="retrain-gate", reason="gate passed", publisher=publisher)
        assert registry.serving(conn, base_model=BASE).version == v2.version  # type: ignore[union-attr]
        assert registry.get(conn, version=v1.version).status == "retired"
        with pytest.raises(PromotionError, match="already serving"):
            registry.promote(conn, version=v2.version, actor="sam")

        back = registry.rollback(conn, base_model=BASE, actor="sam", reason="complaints", publisher=publisher)
        assert (back.version, back.previous) == (v1.version, v2.version)
        assert registry.serving(conn, base_model=BASE).version == v1.version  # type: ignore[union-attr]
        assert registry.get(conn, version=v2.version).status == "retired"

        to_base = registry.rollback(conn, base_model=BASE, actor="sam", publisher=publisher)
        assert to_base.version is None and registry.serving(conn, base_model=BASE) is None
        with pytest.raises(PromotionError, match="no adapter to roll back"):
            registry.rollback(conn, base_model=BASE, actor="sam")

    records = audit.records_after(conn, after_seq=0)
    assert [(r.action, r.decision, r.adapter_version, r.actor_id) for r in records] == [
        ("model_promoted", "promoted", v1.version, "sam"),
        ("model_promoted", "promoted", v2.version, "retrain-gate"),
        ("model_rolled_back", "rolled_back", v2.version, "sam"),
        ("model_rolled_back", "rolled_back", v1.version, "sam"),
    ]
    assert records[1].details["previous"] == v1.version and records[1].reason == "gate passed"
    assert records[2].details["restored"] == v1.version and records[2].reason == "complaints"
    assert audit.verify(conn).ok
    events = model_events(topics_ready)
    assert [(e["action"], e["version"], e["previous"]) for e in events] == [
        ("promoted", v1.version, None),
        ("promoted", v2.version, v1.version),
        ("rolled_back", v1.version, v2.version),
        ("rolled_back", None, v1.version),
    ]


def test_live_feedback_rolls_back_a_worse_adapter(conn: psycopg.Connection, tmp_path: Path) -> None:
    v1, v2 = register(conn, tmp_path, 1), register(conn, tmp_path, 2)
    registry.promote(conn, version=v1.version, actor="gate")
    registry.promote(conn, version=v2.version, actor="gate")
    good = [signal(f"A-{n}", "thumbs_up", adapter=v1.version) for n in range(20)]
    bad = [signal(f"A-{100 + n}", "thumbs_down" if n % 2 else "accepted", adapter=v2.version) for n in range(20)]
    feedback.store_feedback(conn, events=good + bad)
    scores = service.live_scores(conn, versions=[v1.version, v2.version])
    assert (scores[v1.version].rate, scores[v2.version].rate) == (1.0, 0.5)
    settings = TrainingSettings(rollback_margin=0.1, rollback_min_feedback=20)
    event = service.check_live_rollback(conn, settings=settings)
    assert event is not None and event.version == v1.version and event.actor == service.ROLLBACK_ACTOR
    assert registry.serving(conn, base_model=BASE).version == v1.version  # type: ignore[union-attr]
    assert service.check_live_rollback(conn, settings=settings) is None


def test_models_cli(conn: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMDESK_IDENTITY__OPERATORS", json.dumps({"sam": {"roles": ["admin"]}}))
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    reset_settings()
    v1 = register(conn, tmp_path, 1)
    runner = CliRunner()
    promoted = runner.invoke(models_app, ["promote", v1.version, "--as", "sam", "--json"])
    assert promoted.exit_code == 0, promoted.output
    assert json.loads(promoted.stdout)["version"] == v1.version
    listed = runner.invoke(models_app, ["list", "--json"])
    assert [v["status"] for v in json.loads(listed.stdout)] == ["promoted"]
    assert runner.invoke(models_app, ["list"]).exit_code == 0
    assert runner.invoke(models_app, ["promote", v1.version, "--as", "nobody"]).exit_code == 1
    rolled = runner.invoke(models_app, ["rollback", "--as", "sam", "--json"])
    assert rolled.exit_code == 0, rolled.output
    assert json.loads(rolled.stdout)["previous"] == v1.version
    assert registry.serving(conn, base_model=BASE) is None
    assert audit.records_after(conn, after_seq=0)[0].actor_id == "sam"


def test_retrain_cli(conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamdesk.training.cli import retrain_app

    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    runner = CliRunner()
    asked = runner.invoke(retrain_app, [])
    assert asked.exit_code != 0 and "--now" in asked.output
    now = runner.invoke(retrain_app, ["--now", "--max-steps", "1", "--json"])
    assert now.exit_code == 0, now.output
    outcome = json.loads(now.stdout)
    assert outcome["status"] == "skipped" and "cannot fill a batch" in outcome["reason"]
    assert conn.execute("SELECT status, reason FROM retrain_runs").fetchall() == [("finished", "manual")]
    table = runner.invoke(retrain_app, ["--now", "--max-steps", "1"])
    assert table.exit_code == 0 and "skipped" in table.stdout


def test_the_registry_lock_is_no_other_advisory_lock() -> None:
    from streamdesk.audit import relay
    from streamdesk.audit import service as audit_service

    assert registry.REGISTRY_LOCK not in {relay.RELAY_LOCK, audit_service.AUDIT_LOCK}  # the relay holds its for life
