"""Sub-commands other installed packages add to `streamdesk`: the `streamdesk.cli` entry-point group.

Each entry point names a callable that takes the root Typer app and adds its commands to it. The
evaluations and benchmarks (`eval ...`, `bench ...`) come this way from the top-level `evals` package,
which imports `streamdesk` and which `streamdesk` never imports by name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points

import typer

GROUP = "streamdesk.cli"
FALLBACK_MODULE = "evals.cli"
"""Loaded when no entry point is registered but the module is importable: an editable install made before the
entry point was declared (its metadata lacks it until reinstalled), or the sources run from PYTHONPATH."""


def _registrars() -> list[Callable[[typer.Typer], None]]:
    points = {point.value: point for point in entry_points(group=GROUP)}  # one target declared twice loads once
    found = [point.load() for point in points.values()]
    if found:
        return found
    try:
        module = importlib.import_module(FALLBACK_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name and (FALLBACK_MODULE + ".").startswith(exc.name + "."):
            return []  # a product-only install: no evaluations, no benchmarks
        raise
    return [module.register]


def register_plugins(app: typer.Typer) -> None:
    """Let every `streamdesk.cli` entry point (or, lacking any, `evals.cli`) add its commands to `app`."""
    for register in _registrars():
        register(app)
