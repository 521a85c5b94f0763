"""Drop the semantic answer cache: measured, it does not pay (README, "Semantic answer cache (issue 17)").

A knowledge question is answered extractively from the retrieved passages with no model step, so a hit saves
only the search and the extraction (tens of milliseconds), while the cache's scope keys and invalidation are
one more way to serve a stale or another scope's answer. The downgrade restores the table and its trigger.
"""

from alembic import op

revision = "0016"
down_revision = "0015"


def upgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS tg_documents_invalidate_answers ON documents")
    op.execute("DROP FUNCTION IF EXISTS streamdesk_answer_cache_invalidate()")
    op.execute("DROP TABLE IF EXISTS answer_cache")


def downgrade() -> None:
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
