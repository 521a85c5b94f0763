"""The first admin: created on first run, when no operator exists yet, so the console can be signed into at once.

`streamdesk up` (and `streamdesk operators first-run`, for deployments that start the parts separately) issues
one `admin` operator when neither the environment nor the database holds any operator, ever. Its token goes
into the state directory (file mode 0600) and into that start's printout, once; later starts say where it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psycopg

from streamdesk.identity import operators
from streamdesk.identity.config import IdentitySettings, get_identity_settings
from streamdesk.identity.models import Role

FIRST_ADMIN_ID = "admin"
TOKEN_FILE = "first-admin.token"


@dataclass(frozen=True)
class FirstAdmin:
    """Where the first admin's token is kept; the token itself only on the start that created it."""

    operator_id: str
    token_path: Path
    token: str | None = None
    """Set only when this call created the operator: print it once."""
    valid: bool = True
    """False when the kept token no longer signs anyone in (revoked)."""

    def describe(self) -> str:
        """One line for the start-up printout."""
        if self.token is not None:
            return (
                f"sign in as {self.operator_id} with token {self.token} "
                f"(shown only now; kept in {self.token_path}, mode 0600)"
            )
        if not self.valid:
            return (
                f"the first-run token in {self.token_path} was revoked; "
                "issue one with `streamdesk operators add ID --role admin`"
            )
        return f"sign in as {self.operator_id} with the token kept in {self.token_path}"


def token_path(state_dir: Path) -> Path:
    """Where the first admin's token is kept."""
    return state_dir / TOKEN_FILE


def _keep(path: Path, token: str) -> None:
    """Write `token` to `path`, readable by its owner only (0600), whatever mode an old file had."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(token + "\n")


def ensure_first_admin(
    conn: psycopg.Connection, *, state_dir: Path, settings: IdentitySettings | None = None
) -> FirstAdmin | None:
    """Create the first admin when no operator exists; what to print about it (None: operators are configured).

    Run inside a transaction: the table lock makes two starts at once create one admin, and the token file is
    written before the row commits, so a committed admin always has its token kept.
    """
    settings = settings or get_identity_settings()
    if settings.operators:
        return None
    path = token_path(state_dir)
    conn.execute("LOCK TABLE operators IN SHARE ROW EXCLUSIVE MODE")
    if operators.any_issued(conn):
        if not path.exists():
            return None
        kept = path.read_text().strip()
        stored = operators.by_token(conn, token=kept)
        return FirstAdmin(
            operator_id=stored.operator_id if stored else FIRST_ADMIN_ID, token_path=path, valid=stored is not None
        )
    token = operators.new_token()
    _keep(path, token)
    operators.add(conn, operator_id=FIRST_ADMIN_ID, roles=[Role.ADMIN], token=token)
    return FirstAdmin(operator_id=FIRST_ADMIN_ID, token_path=path, token=token)
