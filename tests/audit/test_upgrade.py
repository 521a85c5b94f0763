"""An installation upgraded past migration 0010 keeps its trail verifiable and appendable."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from streamdesk import db
from streamdesk.audit import service as audit
from streamdesk.audit.config import get_audit_settings
from streamdesk.audit.models import GENESIS_HASH, AuditContent
from streamdesk.config import REPO_ROOT
from streamdesk.contracts import utcnow
from streamdesk.runtime.embedded import EmbeddedDatabase
from tests.audit.conftest import event


def before_head_revision() -> str:
    """The revision migration 0010 (the signed head) follows."""
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    previous = ScriptDirectory.from_config(config).get_revision("0010").down_revision
    assert isinstance(previous, str)
    return previous


def test_a_trail_written_before_the_head_existed_is_adopted_by_the_upgrade(tmp_path: Path) -> None:
    server = EmbeddedDatabase(tmp_path / "pg").start()
    try:
        db.migrate(server.url, before_head_revision())
        settings = get_audit_settings()
        prev_hash = GENESIS_HASH
        with db.connect(server.url, autocommit=True) as conn:
            for seq in (1, 2, 3):
                content = audit.canonical_json(
                    AuditContent(**dict(event(n=seq)), recorded_at=utcnow()).model_dump(mode="json")
                )
                record_hash = audit.chain_hash(seq=seq, prev_hash=prev_hash, content=content)
                conn.execute(
                    "INSERT INTO audit_records (seq, content, prev_hash, record_hash, signature) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (seq, content, prev_hash, record_hash, audit.sign(record_hash, settings=settings)),
                )
                prev_hash = record_hash
        db.migrate(server.url)
        with db.connect(server.url, autocommit=True) as conn:
            assert conn.execute("SELECT seq, record_hash FROM audit_head").fetchall() == [(3, prev_hash)]
            assert audit.verify(conn).ok
            assert audit.append(conn, event=event(n=4)).seq == 4
            assert audit.verify(conn).ok
    finally:
        server.stop()
