"""Deliveries: each reply that goes out to a ticket's source, keyed by its reply id so it is posted at most once.

A row is written when a reply is first seen (from the `answer` or `reply` topic, or by the verdict that
accepts a draft) and moves queued -> sending -> delivered, or to retrying (the helpdesk was unreachable or
busy; the worker tries again at `next_attempt_at`) or dead_lettered (the helpdesk refused it, with its reason).
`sending` is committed before the request goes out, so a worker killed after posting finds it and looks for
the reply id stamped in the ticket's comments before it posts again.
"""

from alembic import op

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE deliveries (
            reply_id         text NOT NULL,
            answer_id        text NOT NULL,
            kind             text NOT NULL,
            source           text NOT NULL,
            ticket_id        text NOT NULL,
            tenant           text NOT NULL,
            destination      text,
            reply            jsonb NOT NULL,
            status           text NOT NULL DEFAULT 'queued',
            attempts         integer NOT NULL DEFAULT 0,
            reason           text,
            remote_ref       text,
            dead_letter_id   bigint,
            next_attempt_at  timestamptz NOT NULL DEFAULT now(),
            created_at       timestamptz NOT NULL DEFAULT now(),
            updated_at       timestamptz NOT NULL DEFAULT now(),
            delivered_at     timestamptz,
            CONSTRAINT pk_deliveries PRIMARY KEY (reply_id),
            CONSTRAINT ck_deliveries_status CHECK (
                status IN ('queued', 'sending', 'retrying', 'delivered', 'dead_lettered')
            ),
            CONSTRAINT ck_deliveries_kind CHECK (kind IN ('auto_reply', 'accepted', 'edited', 'follow_up'))
        )
        """
    )
    op.execute("CREATE INDEX ix_deliveries_answer_id ON deliveries (answer_id)")
    op.execute("CREATE INDEX ix_deliveries_source_ticket_id ON deliveries (source, ticket_id)")
    op.execute(
        "CREATE INDEX ix_deliveries_due ON deliveries (next_attempt_at) "
        "WHERE status IN ('queued', 'sending', 'retrying')"
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS deliveries")
