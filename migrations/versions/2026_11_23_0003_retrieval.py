"""Retrieval: embedding-space registry, shadow embedding columns for model migrations, semantic answer cache."""

from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE embedding_spaces (
            name          text NOT NULL,
            model         text NOT NULL,
            version       text NOT NULL,
            backend       text NOT NULL DEFAULT 'torch',
            path          text,
            dimension     integer NOT NULL,
            state         text NOT NULL,
            comparison    jsonb,
            created_at    timestamptz NOT NULL DEFAULT now(),
            activated_at  timestamptz,
            retired_at    timestamptz,
            CONSTRAINT pk_embedding_spaces PRIMARY KEY (name),
            CONSTRAINT ck_embedding_spaces_state CHECK (state IN ('active', 'shadow', 'retired', 'aborted'))
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX uq_embedding_spaces_active ON embedding_spaces (state) WHERE state = 'active'")
    op.execute("CREATE UNIQUE INDEX uq_embedding_spaces_shadow ON embedding_spaces (state) WHERE state = 'shadow'")
    op.execute(
        """
        ALTER TABLE chunks
            ADD COLUMN embedding_shadow vector(384),
            ADD COLUMN embedding_model_shadow text,
            ADD COLUMN embedding_version_shadow text,
            ADD COLUMN content_hash_shadow text
        """
    )
    op.execute(
        """
        CREATE FUNCTION streamdesk_chunks_clear_shadow() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.content_hash IS DISTINCT FROM OLD.content_hash THEN
                NEW.embedding_shadow := NULL;
                NEW.embedding_model_shadow := NULL;
                NEW.embedding_version_shadow := NULL;
                NEW.content_hash_shadow := NULL;
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER tg_chunks_clear_shadow BEFORE UPDATE ON chunks "
        "FOR EACH ROW EXECUTE FUNCTION streamdesk_chunks_clear_shadow()"
    )
    op.execute("CREATE INDEX ix_chunks_doc_type ON chunks (doc_type)")
    op.execute("CREATE INDEX ix_chunks_occurred_at ON chunks (occurred_at)")
    op.execute(
        """
        CREATE TABLE answer_cache (
            id                bigserial,
            scope_key         text NOT NULL,
            knowledge_version text NOT NULL,
            query             text NOT NULL,
            embedding         vector NOT NULL,
            answer            jsonb NOT NULL,
            cited_documents   text[] NOT NULL DEFAULT '{}',
            hits              integer NOT NULL DEFAULT 0,
            created_at        timestamptz NOT NULL DEFAULT now(),
            last_hit_at       timestamptz,
            CONSTRAINT pk_answer_cache PRIMARY KEY (id)
        )
        """
    )
    op.execute(
        "CREATE INDEX ix_answer_cache_scope_key_knowledge_version ON answer_cache (scope_key, knowledge_version)"
    )
    op.execute("CREATE INDEX ix_answer_cache_cited_documents ON answer_cache USING gin (cited_documents)")
    op.execute(
        """
        CREATE FUNCTION streamdesk_answer_cache_invalidate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' OR (OLD.version, OLD.deleted, OLD.content_hash, OLD.title, OLD.url, OLD.tenant,
                    OLD.access_level, OLD.access_groups)
                IS DISTINCT FROM (NEW.version, NEW.deleted, NEW.content_hash, NEW.title, NEW.url, NEW.tenant,
                    NEW.access_level, NEW.access_groups) THEN
                DELETE FROM answer_cache WHERE cited_documents @> ARRAY[OLD.source || ':' || OLD.external_id];
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER tg_documents_invalidate_answers AFTER UPDATE OR DELETE ON documents "
        "FOR EACH ROW EXECUTE FUNCTION streamdesk_answer_cache_invalidate()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS tg_documents_invalidate_answers ON documents")
    op.execute("DROP FUNCTION IF EXISTS streamdesk_answer_cache_invalidate()")
    op.execute("DROP TABLE IF EXISTS answer_cache")
    op.execute("DROP INDEX IF EXISTS ix_chunks_occurred_at")
    op.execute("DROP INDEX IF EXISTS ix_chunks_doc_type")
    op.execute("DROP TRIGGER IF EXISTS tg_chunks_clear_shadow ON chunks")
    op.execute("DROP FUNCTION IF EXISTS streamdesk_chunks_clear_shadow()")
    for index in ("ix_chunks_embedding_halfvec", "ix_chunks_embedding_binary"):
        op.execute(f"DROP INDEX IF EXISTS {index}")
    op.execute(
        """
        ALTER TABLE chunks
            DROP COLUMN IF EXISTS embedding_shadow,
            DROP COLUMN IF EXISTS embedding_model_shadow,
            DROP COLUMN IF EXISTS embedding_version_shadow,
            DROP COLUMN IF EXISTS content_hash_shadow
        """
    )
    op.execute("DROP TABLE IF EXISTS embedding_spaces")
