"""Durable webhook intake: each accepted delivery keeps its payload until ingest has made it durable.

The gateway stores the body, headers, topic and key with the delivery's replay key in one transaction;
the relay publishes pending deliveries to their raw topic and re-publishes those not processed in time;
ingest records which canonical parts it stored (`parts_done`) and sets `processed_at` (dropping the
body) once all of them are, or once the delivery is dead-lettered or yields nothing.
"""

from alembic import op

revision = "0009"
down_revision = "0007"


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE webhook_deliveries
            ADD COLUMN id              bigint GENERATED ALWAYS AS IDENTITY,
            ADD COLUMN topic           text,
            ADD COLUMN key             text,
            ADD COLUMN headers         jsonb,
            ADD COLUMN body            bytea,
            ADD COLUMN published_at    timestamptz,
            ADD COLUMN publish_attempts integer NOT NULL DEFAULT 0,
            ADD COLUMN next_publish_at timestamptz,
            ADD COLUMN parts_done      integer[] NOT NULL DEFAULT '{}',
            ADD COLUMN processed_at    timestamptz,
            ADD CONSTRAINT uq_webhook_deliveries_id UNIQUE (id)
        """
    )
    op.execute(
        "CREATE INDEX ix_webhook_deliveries_pending ON webhook_deliveries (next_publish_at, id) "
        "WHERE processed_at IS NULL AND body IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_webhook_deliveries_pending")
    op.execute(
        """
        ALTER TABLE webhook_deliveries
            DROP CONSTRAINT uq_webhook_deliveries_id,
            DROP COLUMN processed_at,
            DROP COLUMN parts_done,
            DROP COLUMN next_publish_at,
            DROP COLUMN publish_attempts,
            DROP COLUMN published_at,
            DROP COLUMN body,
            DROP COLUMN headers,
            DROP COLUMN key,
            DROP COLUMN topic,
            DROP COLUMN id
        """
    )
