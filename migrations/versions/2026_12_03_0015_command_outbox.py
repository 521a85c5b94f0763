"""The command outbox: writes the agent carries out, as commands to systems of record, tracked to their end.

A row is written in the transaction of the write's audit record; the command relay publishes it
(`published_at`), the CDC ingest ticks off the rows it changed (`awaiting`) and confirms it, a rejection
fails it, a timeout escalates it; `followed_up_at` says the customer heard of the latest outcome.
"""

from alembic import op

revision = "0015"
down_revision = "0014"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE command_outbox (
            command_id      uuid NOT NULL,
            idempotency_key text NOT NULL,
            system          text NOT NULL,
            topic           text NOT NULL,
            ticket_id       text NOT NULL,
            tenant          text NOT NULL,
            tool_name       text NOT NULL,
            action_id       text,
            payload         jsonb NOT NULL,
            awaiting        text[] NOT NULL,
            status          text NOT NULL DEFAULT 'issued',
            reason          text,
            created_at      timestamptz NOT NULL DEFAULT now(),
            published_at    timestamptz,
            resolved_at     timestamptz,
            followed_up_at  timestamptz,
            CONSTRAINT pk_command_outbox PRIMARY KEY (command_id),
            CONSTRAINT uq_command_outbox_idempotency_key UNIQUE (idempotency_key),
            CONSTRAINT ck_command_outbox_status CHECK (status IN ('issued', 'confirmed', 'failed', 'escalated'))
        )
        """
    )
    op.execute("CREATE INDEX ix_command_outbox_unpublished ON command_outbox (created_at) WHERE published_at IS NULL")
    op.execute("CREATE INDEX ix_command_outbox_status ON command_outbox (status, created_at)")
    op.execute("CREATE INDEX ix_command_outbox_ticket_id ON command_outbox (ticket_id)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS command_outbox")
