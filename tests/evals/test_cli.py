"""`streamdesk eval ...` and `streamdesk bench ...` come from the `evals` package, which the product never imports."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from streamdesk.cli import plugins
from streamdesk.cli.main import app

SRC = Path(__file__).resolve().parents[2] / "src" / "streamdesk"


def imported_modules(path: Path) -> set[str]:
    """The modules a file imports by name (absolute imports only; the product uses no relative ones)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_product_package_imports_nothing_from_evals() -> None:
    offenders = {
        str(path.relative_to(SRC)): sorted(m for m in imported_modules(path) if m.split(".")[0] == "evals")
        for path in SRC.rglob("*.py")
    }
    assert not {path: mods for path, mods in offenders.items() if mods}


def test_eval_and_bench_list_their_commands() -> None:
    evals = CliRunner().invoke(app, ["eval", "--help"])
    assert evals.exit_code == 0, evals.output
    assert all(
        name in evals.stdout for name in ("agent", "answers", "conversations", "retrieval", "flywheel", "convert")
    )
    bench = CliRunner().invoke(app, ["bench", "--help"])
    assert bench.exit_code == 0, bench.output
    assert all(name in bench.stdout for name in ("ingest", "agent", "retrain", "retrieval", "embedders"))


def test_the_streamdesk_process_runs_a_plugin_command(tmp_path: Path) -> None:
    """A real `streamdesk` process converts cases through `eval convert` (the plugin hook, end to end)."""
    out = tmp_path / "cases.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "streamdesk.cli.main", "eval", "convert", "taubench", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.read_text().count("\n") == 40 and '"split": "test"' in done.stdout


def test_eval_convert_writes_the_taubench_conversations(tmp_path: Path) -> None:
    out = tmp_path / "conversations.jsonl"
    done = CliRunner().invoke(app, ["eval", "convert", "tau2-conversations", "--split", "train", "--out", str(out)])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["cases"] == 74 and summary["split"] == "train" and summary["turns"]["min"] >= 1
    first = json.loads(out.read_text().splitlines()[0])
    assert first["turns"][-1] == {"body": "Yes, I confirm."} and first["writes_after_turn"] == len(first["turns"])


def test_the_entry_point_group_is_what_a_wheel_install_loads(tmp_path: Path) -> None:
    """With the metadata a wheel install writes (pyproject's `streamdesk.cli` entry point), `bench` comes from it."""
    for name in ("probe_a", "probe_b"):  # the same target declared twice (e.g. an old and a new install) loads once
        info = tmp_path / f"{name}-0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0\n")
        (info / "entry_points.txt").write_text("[streamdesk.cli]\nevals = evals.cli:register\n")
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    code = (
        "from importlib.metadata import entry_points; import typer; from streamdesk.cli import plugins;"
        "plugins.importlib = None;"  # the fallback import cannot run: the groups must come from the entry point
        "app = typer.Typer(); plugins.register_plugins(app);"
        "print(sorted(p.value for p in entry_points(group='streamdesk.cli')),"
        " sorted(g.name for g in app.registered_groups))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "'evals.cli:register', 'evals.cli:register'" in done.stdout and "['bench', 'eval']" in done.stdout


def test_without_an_entry_point_the_loader_falls_back_to_evals_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "entry_points", lambda group: [])
    fresh = typer.Typer()
    plugins.register_plugins(fresh)
    assert {group.name for group in fresh.registered_groups} == {"eval", "bench"}


def test_a_product_without_evals_still_loads_its_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "entry_points", lambda group: [])
    monkeypatch.setitem(sys.modules, "evals", None)  # evals not importable
    monkeypatch.delitem(sys.modules, "evals.cli", raising=False)
    fresh = typer.Typer()
    plugins.register_plugins(fresh)
    assert fresh.registered_groups == []
