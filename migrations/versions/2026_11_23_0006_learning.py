"""Learning loop: feedback signals, labelled KTO examples, the adapter registry, promotions and retrain runs.

`feedback` keeps every signal as received (idempotent on `event_id`); `answer_id` has no foreign key
because feedback may arrive on the topic before the answer row commits. `training_examples` holds at
most one example per (answer, source) — `draft` or `edit` — rewritten when a late signal changes its
label, with its text already PII-redacted. `adapter_versions` is the registry (at most one promoted
adapter per base model); `adapter_promotions` is the history that rollback walks back.
"""

from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE feedback (
            event_id        text NOT NULL,
            answer_id       text NOT NULL,
            ticket_id       text NOT NULL,
            kind            text NOT NULL,
            rating          smallint,
            edited_text     text,
            adapter_version text,
            customer_id     text,
            annotator_id    text,
            tenant          text NOT NULL DEFAULT 'default',
            occurred_at     timestamptz NOT NULL,
            received_at     timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_feedback PRIMARY KEY (event_id),
            CONSTRAINT ck_feedback_kind CHECK (
                kind IN ('thumbs_up', 'thumbs_down', 'accepted', 'edited', 'rejected', 'reopened', 'csat')
            ),
            CONSTRAINT ck_feedback_rating CHECK (
                (kind = 'csat' AND rating BETWEEN 1 AND 5) OR (kind <> 'csat' AND rating IS NULL)
            ),
            CONSTRAINT ck_feedback_edited_text CHECK ((kind = 'edited') = (edited_text IS NOT NULL))
        )
        """
    )
    op.execute("CREATE INDEX ix_feedback_answer_id ON feedback (answer_id, occurred_at)")
    op.execute("CREATE INDEX ix_feedback_received_at ON feedback (received_at)")
    op.execute("CREATE INDEX ix_feedback_adapter_version ON feedback (adapter_version, occurred_at)")
    op.execute(
        """
        CREATE TABLE training_examples (
            id              bigserial,
            answer_id       text NOT NULL,
            source          text NOT NULL,
            ticket_id       text NOT NULL,
            prompt          text NOT NULL,
            completion      text NOT NULL,
            label           boolean NOT NULL,
            content_digest  text NOT NULL,
            adapter_version text,
            policy_version  text NOT NULL,
            decided_by      text NOT NULL,
            signal_ids      text[] NOT NULL DEFAULT '{}',
            customer_id     text,
            annotator_id    text,
            tenant          text NOT NULL DEFAULT 'default',
            heldout         boolean NOT NULL DEFAULT false,
            trained_in      text,
            created_at      timestamptz NOT NULL DEFAULT now(),
            updated_at      timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_training_examples PRIMARY KEY (id),
            CONSTRAINT uq_training_examples_answer_id_source UNIQUE (answer_id, source),
            CONSTRAINT ck_training_examples_source CHECK (source IN ('draft', 'edit'))
        )
        """
    )
    op.execute("CREATE INDEX ix_training_examples_trained_in ON training_examples (trained_in, heldout)")
    op.execute("CREATE INDEX ix_training_examples_content_digest ON training_examples (content_digest)")
    op.execute(
        """
        CREATE TABLE adapter_versions (
            id              bigserial,
            version         text GENERATED ALWAYS AS ('kto-' || id::text) STORED,
            base_model      text NOT NULL,
            parent          text,
            dataset_digest  text NOT NULL,
            config          jsonb NOT NULL DEFAULT '{}',
            metrics         jsonb NOT NULL DEFAULT '{}',
            gate            jsonb,
            status          text NOT NULL DEFAULT 'candidate',
            path            text NOT NULL,
            created_at      timestamptz NOT NULL DEFAULT now(),
            promoted_at     timestamptz,
            retired_at      timestamptz,
            CONSTRAINT pk_adapter_versions PRIMARY KEY (id),
            CONSTRAINT uq_adapter_versions_version UNIQUE (version),
            CONSTRAINT ck_adapter_versions_status CHECK (status IN ('candidate', 'promoted', 'retired'))
        )
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX uq_adapter_versions_base_model_promoted ON adapter_versions (base_model) "
        "WHERE status = 'promoted'"
    )
    op.execute(
        """
        CREATE TABLE adapter_promotions (
            id          bigserial,
            base_model  text NOT NULL,
            action      text NOT NULL,
            version     text,
            previous    text,
            actor       text NOT NULL,
            reason      text NOT NULL DEFAULT '',
            occurred_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_adapter_promotions PRIMARY KEY (id),
            CONSTRAINT ck_adapter_promotions_action CHECK (action IN ('promoted', 'rolled_back'))
        )
        """
    )
    op.execute("CREATE INDEX ix_adapter_promotions_base_model_id ON adapter_promotions (base_model, id)")
    op.execute(
        """
        CREATE TABLE retrain_runs (
            request_id   text NOT NULL,
            reason       text NOT NULL,
            requested_at timestamptz NOT NULL,
            started_at   timestamptz,
            finished_at  timestamptz,
            status       text NOT NULL DEFAULT 'requested',
            version      text,
            details      jsonb NOT NULL DEFAULT '{}',
            CONSTRAINT pk_retrain_runs PRIMARY KEY (request_id),
            CONSTRAINT ck_retrain_runs_status CHECK (status IN ('requested', 'running', 'finished', 'failed'))
        )
        """
    )
    op.execute("CREATE INDEX ix_retrain_runs_requested_at ON retrain_runs (requested_at)")


def downgrade() -> None:
    for table in ("retrain_runs", "adapter_promotions", "adapter_versions", "training_examples", "feedback"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
