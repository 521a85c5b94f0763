"""Webhook deliveries seen by the gateway, so a replayed delivery is refused instead of published twice."""

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE webhook_deliveries (
            source      text NOT NULL,
            delivery_id text NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_webhook_deliveries PRIMARY KEY (source, delivery_id)
        )
        """
    )
    op.execute("CREATE INDEX ix_webhook_deliveries_received_at ON webhook_deliveries (received_at)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS webhook_deliveries")
