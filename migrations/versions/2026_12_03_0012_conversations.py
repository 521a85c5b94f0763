"""Conversations: a ticket is a thread, and the agent keeps its place in it.

`conversations` holds one row per ticket (source, ticket id): the customer the agent established and how,
the facts its reads already found, the open request (the customer's words an answer to a question
completes), the changes held for the customer's confirmation and the pending actions awaiting a
supervisor. `conversation_messages` holds the thread in order, customer and agent; a customer message is
unique on its event id and an agent message on its answer id, so a redelivered or replayed event adds
nothing.
"""

from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE conversations (
            source             text NOT NULL,
            ticket_id          text NOT NULL,
            tenant             text NOT NULL DEFAULT 'default',
            customer_id        text,
            identified_by      text,
            open_request       text,
            facts              jsonb NOT NULL DEFAULT '[]'::jsonb,
            held_actions       jsonb NOT NULL DEFAULT '[]'::jsonb,
            pending_action_ids text[] NOT NULL DEFAULT '{}',
            updated_at         timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_conversations PRIMARY KEY (source, ticket_id)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE conversation_messages (
            message_id  bigint GENERATED ALWAYS AS IDENTITY,
            source      text NOT NULL,
            ticket_id   text NOT NULL,
            role        text NOT NULL,
            event_id    text NOT NULL,
            answer_id   uuid,
            text        text NOT NULL,
            decision    text,
            created_at  timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_conversation_messages PRIMARY KEY (message_id),
            CONSTRAINT ck_conversation_messages_role CHECK (role IN ('customer', 'agent')),
            CONSTRAINT fk_conversation_messages_conversation FOREIGN KEY (source, ticket_id)
                REFERENCES conversations (source, ticket_id) ON DELETE CASCADE,
            CONSTRAINT uq_conversation_messages_role_event UNIQUE (role, event_id)
        )
        """
    )
    op.execute("CREATE INDEX ix_conversation_messages_ticket ON conversation_messages (source, ticket_id, message_id)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS conversation_messages")
    op.execute("DROP TABLE IF EXISTS conversations")
