"""Audit trail (hash-chained, append-only, checkpointed), pending actions awaiting approval, executed writes.

`audit_records.content` holds the canonical JSON that was hashed, byte for byte; the query columns are
generated from it, so they cannot drift from what the hash covers. A trigger refuses UPDATE and DELETE
on the audit tables and on `executed_actions` unless the session sets `streamdesk.audit_maintenance`
to 'on' (tests that tamper on purpose, admin repair tools); `streamdesk audit verify` still detects any
change made that way, or with table-owner privileges.
"""

from alembic import op

revision = "0004"
down_revision = "0003"

APPEND_ONLY_TABLES = ("audit_records", "audit_checkpoints", "executed_actions")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE audit_records (
            seq         bigint NOT NULL,
            content     text NOT NULL,
            prev_hash   text NOT NULL,
            record_hash text NOT NULL,
            signature   text NOT NULL,
            action      text GENERATED ALWAYS AS (content::jsonb ->> 'action') STORED,
            ticket_id   text GENERATED ALWAYS AS (content::jsonb ->> 'ticket_id') STORED,
            tenant      text GENERATED ALWAYS AS (content::jsonb ->> 'tenant') STORED,
            tool_name   text GENERATED ALWAYS AS (content::jsonb ->> 'tool_name') STORED,
            trace_id    text GENERATED ALWAYS AS (content::jsonb ->> 'trace_id') STORED,
            CONSTRAINT pk_audit_records PRIMARY KEY (seq),
            CONSTRAINT ck_audit_records_seq_positive CHECK (seq > 0)
        )
        """
    )
    op.execute("CREATE INDEX ix_audit_records_ticket_id ON audit_records (ticket_id, seq)")
    op.execute("CREATE INDEX ix_audit_records_trace_id ON audit_records (trace_id)")
    op.execute(
        """
        CREATE TABLE audit_checkpoints (
            seq         bigint NOT NULL,
            record_hash text NOT NULL,
            signature   text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_audit_checkpoints PRIMARY KEY (seq)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE pending_actions (
            id               uuid NOT NULL DEFAULT gen_random_uuid(),
            idempotency_key  text NOT NULL,
            ticket_id        text NOT NULL,
            tenant           text NOT NULL DEFAULT 'default',
            tool_name        text NOT NULL,
            arguments        jsonb NOT NULL,
            proposer         jsonb NOT NULL,
            proposer_id      text NOT NULL,
            reason           text NOT NULL DEFAULT '',
            status           text NOT NULL DEFAULT 'pending',
            decided_by       text,
            decided_by_roles text[],
            decision_note    text,
            created_at       timestamptz NOT NULL DEFAULT now(),
            decided_at       timestamptz,
            executed_at      timestamptz,
            CONSTRAINT pk_pending_actions PRIMARY KEY (id),
            CONSTRAINT uq_pending_actions_idempotency_key UNIQUE (idempotency_key),
            CONSTRAINT ck_pending_actions_status CHECK (status IN ('pending', 'approved', 'rejected', 'executed'))
        )
        """
    )
    op.execute("CREATE INDEX ix_pending_actions_status_created_at ON pending_actions (status, created_at)")
    op.execute(
        """
        CREATE TABLE executed_actions (
            idempotency_key text NOT NULL,
            tool_name       text,
            ticket_id       text,
            executed_at     timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_executed_actions PRIMARY KEY (idempotency_key)
        )
        """
    )
    op.execute(
        """
        CREATE FUNCTION streamdesk_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF current_setting('streamdesk.audit_maintenance', true) = 'on' THEN
                IF TG_OP = 'DELETE' THEN
                    RETURN OLD;
                END IF;
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '% on % refused: the table is append-only', TG_OP, TG_TABLE_NAME
                USING HINT = 'append a new record instead; only tests and admin repair tools set '
                             'streamdesk.audit_maintenance = on';
        END
        $$
        """
    )
    for table in APPEND_ONLY_TABLES:
        op.execute(
            f"CREATE TRIGGER tr_{table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION streamdesk_append_only()"
        )


def downgrade() -> None:
    for table in ("executed_actions", "pending_actions", "audit_checkpoints", "audit_records"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("DROP FUNCTION IF EXISTS streamdesk_append_only()")
