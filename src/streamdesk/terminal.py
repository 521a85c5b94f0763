"""How every reporting command prints: one JSON value on stdout with `--json`, else a rich table.

Progress bars and chatter go to stderr, so `--json` output stays one parseable value on stdout.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from streamdesk.exceptions import StreamdeskError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON value on stdout instead of a table.")]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str)
    return str(value)


def print_json(data: Any) -> None:
    """Write `data` as one line of JSON on stdout."""
    typer.echo(json.dumps(data, default=str))


@contextlib.contextmanager
def refusals() -> Iterator[None]:
    """Turn a StreamdeskError raised inside into `refused: <why>` on stderr and exit code 1."""
    try:
        yield
    except StreamdeskError as exc:
        Console(stderr=True).print(f"refused: {exc}")
        raise typer.Exit(code=1) from None


def announce(data: Any, *, as_json: bool, message: str) -> None:
    """What a command did: `data` as one JSON value with `--json`, else `message` on stderr."""
    if as_json:
        print_json(data)
        return
    Console(stderr=True).print(message)


def emit(data: Mapping[str, Any], *, as_json: bool, title: str) -> None:
    """One object: JSON, or a two-column key/value table."""
    if as_json:
        print_json(dict(data))
        return
    table = Table(title=title, show_header=False)
    for key, value in data.items():
        table.add_row(str(key), _cell(value))
    Console().print(table)


def emit_rows(
    rows: Sequence[Mapping[str, Any]], *, as_json: bool, title: str, columns: Sequence[str] | None = None
) -> None:
    """A list of objects: a JSON array, or a table of `columns` (default: the first row's keys)."""
    if as_json:
        print_json([dict(row) for row in rows])
        return
    names = list(columns or (rows[0].keys() if rows else ()))
    table = Table(title=f"{title} ({len(rows)})")
    for name in names:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(name)) for name in names))
    Console().print(table)


def show_progress(*, as_json: bool) -> bool:
    """Whether to draw progress bars: only for people, on a terminal, and never under `--json`."""
    return not as_json and sys.stderr.isatty()


@contextlib.contextmanager
def stdout_to_stderr(*, enabled: bool) -> Iterator[None]:
    """Send what libraries print on stdout (trainer logs, tqdm.write) to stderr while `enabled`."""
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield
