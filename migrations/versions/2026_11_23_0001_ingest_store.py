"""Ingest store: documents, chunks (pgvector + full text), entities, tickets, dead letters."""

from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute(
        """
        CREATE TABLE documents (
            source        text NOT NULL,
            external_id   text NOT NULL,
            version       bigint[] NOT NULL,
            deleted       boolean NOT NULL DEFAULT false,
            event_id      text NOT NULL,
            title         text NOT NULL DEFAULT '',
            url           text,
            doc_type      text NOT NULL DEFAULT 'article',
            language      text,
            tenant        text NOT NULL DEFAULT 'default',
            access_level  text NOT NULL DEFAULT 'internal',
            access_groups text[] NOT NULL DEFAULT '{}',
            content_hash  text,
            chunk_count   integer NOT NULL DEFAULT 0,
            metadata      jsonb NOT NULL DEFAULT '{}',
            source_position jsonb,
            occurred_at   timestamptz,
            updated_at    timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_documents PRIMARY KEY (source, external_id),
            CONSTRAINT ck_documents_access_level CHECK (access_level IN ('public', 'internal', 'restricted'))
        )
        """
    )
    op.execute(
        """
        CREATE TABLE chunks (
            source            text NOT NULL,
            external_id       text NOT NULL,
            chunk_no          integer NOT NULL,
            title             text NOT NULL DEFAULT '',
            text              text NOT NULL,
            char_start        integer NOT NULL,
            char_end          integer NOT NULL,
            token_count       integer NOT NULL,
            content_hash      text NOT NULL,
            embedding         vector(384) NOT NULL,
            embedding_model   text NOT NULL,
            embedding_version text NOT NULL,
            url               text,
            doc_type          text NOT NULL DEFAULT 'article',
            tenant            text NOT NULL DEFAULT 'default',
            access_level      text NOT NULL DEFAULT 'internal',
            access_groups     text[] NOT NULL DEFAULT '{}',
            occurred_at       timestamptz,
            updated_at        timestamptz NOT NULL DEFAULT now(),
            tsv tsvector GENERATED ALWAYS AS (
                setweight(to_tsvector('english', coalesce(title, '')), 'A')
                || setweight(to_tsvector('english', text), 'B')
            ) STORED,
            CONSTRAINT pk_chunks PRIMARY KEY (source, external_id, chunk_no),
            CONSTRAINT fk_chunks_source_external_id_documents FOREIGN KEY (source, external_id)
                REFERENCES documents (source, external_id) ON DELETE CASCADE
        )
        """
    )
    op.execute("CREATE INDEX ix_chunks_embedding ON chunks USING hnsw (embedding vector_cosine_ops)")
    op.execute("CREATE INDEX ix_chunks_tsv ON chunks USING gin (tsv)")
    op.execute("CREATE INDEX ix_chunks_content_hash ON chunks (content_hash)")
    op.execute("CREATE INDEX ix_chunks_access_groups ON chunks USING gin (access_groups)")
    op.execute("CREATE INDEX ix_chunks_tenant_access_level ON chunks (tenant, access_level)")
    op.execute(
        """
        CREATE TABLE entities (
            entity_type text NOT NULL,
            source      text NOT NULL,
            external_id text NOT NULL,
            version     bigint[] NOT NULL,
            deleted     boolean NOT NULL DEFAULT false,
            event_id    text NOT NULL,
            attributes  jsonb NOT NULL DEFAULT '{}',
            tenant      text NOT NULL DEFAULT 'default',
            source_position jsonb,
            occurred_at timestamptz,
            updated_at  timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_entities PRIMARY KEY (entity_type, source, external_id),
            CONSTRAINT ck_entities_entity_type
                CHECK (entity_type IN ('customer', 'order', 'order_item', 'invoice', 'product'))
        )
        """
    )
    op.execute("CREATE INDEX ix_entities_external_id ON entities (external_id)")
    op.execute(
        "CREATE INDEX ix_entities_email ON entities (lower(attributes->>'email')) WHERE entity_type = 'customer'"
    )
    op.execute(
        "CREATE INDEX ix_entities_customer_id ON entities ((attributes->>'customer_id')) "
        "WHERE entity_type IN ('order', 'invoice')"
    )
    op.execute(
        """
        CREATE TABLE tickets (
            source      text NOT NULL,
            ticket_id   text NOT NULL,
            version     bigint[] NOT NULL,
            subject     text,
            status      text,
            priority    text,
            assignee_id text,
            requester   jsonb,
            customer_id text,
            tags        text[] NOT NULL DEFAULT '{}',
            tenant      text NOT NULL DEFAULT 'default',
            metadata    jsonb NOT NULL DEFAULT '{}',
            created_at  timestamptz,
            updated_at  timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_tickets PRIMARY KEY (source, ticket_id)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE ticket_events (
            event_id    text NOT NULL,
            source      text NOT NULL,
            ticket_id   text NOT NULL,
            event_type  text NOT NULL,
            version     bigint[] NOT NULL,
            body        text,
            occurred_at timestamptz NOT NULL,
            payload     jsonb NOT NULL,
            CONSTRAINT pk_ticket_events PRIMARY KEY (event_id)
        )
        """
    )
    op.execute("CREATE INDEX ix_ticket_events_ticket ON ticket_events (source, ticket_id, occurred_at)")
    op.execute(
        """
        CREATE TABLE dead_letters (
            id          bigserial,
            topic       text NOT NULL,
            partition   integer NOT NULL,
            "offset"    bigint NOT NULL,
            key         bytea,
            value       bytea,
            headers     jsonb NOT NULL DEFAULT '{}',
            reason      text NOT NULL,
            error_type  text NOT NULL,
            stage       text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_dead_letters PRIMARY KEY (id),
            CONSTRAINT uq_dead_letters_topic_partition_offset_stage UNIQUE (topic, partition, "offset", stage)
        )
        """
    )


def downgrade() -> None:
    for table in ("dead_letters", "ticket_events", "tickets", "entities", "chunks", "documents"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
