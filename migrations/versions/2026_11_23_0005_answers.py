"""Answers: the agent's reply to one ticket event, with its tool trace and the versions that produced it.

`event_id` is unique: a redelivered ticket event finds its answer instead of making a second one.
"""

from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE answers (
            answer_id          uuid NOT NULL,
            event_id           text NOT NULL,
            source             text NOT NULL,
            ticket_id          text NOT NULL,
            tenant             text NOT NULL DEFAULT 'default',
            customer_id        text,
            status             text NOT NULL,
            text               text NOT NULL,
            citations          jsonb NOT NULL DEFAULT '[]'::jsonb,
            trace              jsonb NOT NULL DEFAULT '[]'::jsonb,
            model              text NOT NULL,
            adapter            text,
            prompt_version     text NOT NULL,
            policy_version     text,
            pending_action_ids text[] NOT NULL DEFAULT '{}',
            trace_id           text,
            created_at         timestamptz NOT NULL DEFAULT now(),
            published_at       timestamptz,
            CONSTRAINT pk_answers PRIMARY KEY (answer_id),
            CONSTRAINT uq_answers_event_id UNIQUE (event_id),
            CONSTRAINT ck_answers_status CHECK (status IN ('draft', 'auto_reply', 'pending_approval', 'escalated'))
        )
        """
    )
    op.execute("CREATE INDEX ix_answers_source_ticket_id ON answers (source, ticket_id, created_at)")
    op.execute("CREATE INDEX ix_answers_status_created_at ON answers (status, created_at)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS answers")
