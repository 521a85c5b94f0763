"""Audit head: one signed (seq, record_hash) row updated with every append, so a deleted tail is found.

Checkpoints are taken every N records, so records after the last checkpoint (or the last record alone)
could be deleted without a trace. The head row names the chain's last record and is signed under the
audit key in the same transaction as every append; `verify` compares the chain's end with it. Triggers
let the head only move forward and refuse to delete it (migration 0004's append-only function) unless
the session sets `streamdesk.audit_maintenance` to 'on'. A trail that already has records gets its head
here, signed under the configured audit key: the upgrade is the one moment the existing end is adopted
without an admin's `--adopt-head`. Audit records gain an index on (tenant, seq) for the per-tenant
audit routes.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE audit_head (
            id          smallint NOT NULL DEFAULT 1,
            seq         bigint NOT NULL,
            record_hash text NOT NULL,
            signature   text NOT NULL,
            updated_at  timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_audit_head PRIMARY KEY (id),
            CONSTRAINT ck_audit_head_single_row CHECK (id = 1),
            CONSTRAINT ck_audit_head_seq_positive CHECK (seq > 0)
        )
        """
    )
    op.execute(
        """
        CREATE FUNCTION streamdesk_audit_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.seq > OLD.seq OR current_setting('streamdesk.audit_maintenance', true) = 'on' THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION 'audit_head from record % to % refused: the head only moves forward', OLD.seq, NEW.seq
                USING HINT = 'append a record instead; only tests and admin repair tools set '
                             'streamdesk.audit_maintenance = on';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER tr_audit_head_forward BEFORE UPDATE ON audit_head "
        "FOR EACH ROW EXECUTE FUNCTION streamdesk_audit_head_forward()"
    )
    op.execute(
        "CREATE TRIGGER tr_audit_head_append_only BEFORE DELETE ON audit_head "
        "FOR EACH ROW EXECUTE FUNCTION streamdesk_append_only()"
    )
    op.execute("CREATE INDEX ix_audit_records_tenant_seq ON audit_records (tenant, seq)")
    _adopt_existing_end()


def _adopt_existing_end() -> None:
    """Sign the last record of a trail written before this migration as its head."""
    from streamdesk.audit.config import get_audit_settings
    from streamdesk.audit.service import sign_head

    last = op.get_bind().execute(sa.text("SELECT seq, record_hash FROM audit_records ORDER BY seq DESC LIMIT 1"))
    row = last.first()
    if row is None:
        return
    signature = sign_head(seq=row.seq, record_hash=row.record_hash, settings=get_audit_settings())
    op.get_bind().execute(
        sa.text("INSERT INTO audit_head (id, seq, record_hash, signature) VALUES (1, :seq, :hash, :signature)"),
        {"seq": row.seq, "hash": row.record_hash, "signature": signature},
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_audit_records_tenant_seq")
    op.execute("DROP TABLE IF EXISTS audit_head")
    op.execute("DROP FUNCTION IF EXISTS streamdesk_audit_head_forward()")
