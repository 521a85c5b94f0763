"""Operators kept in the database beside the environment-configured ones: roles, groups, tenant, hashed token.

A row per issued token. The token itself is never stored, only its SHA-256: tokens are 256 random bits from
`secrets`, so the digest cannot be reversed or guessed (a slow KDF protects low-entropy passwords, which these
are not), and an equality lookup on the digest finds the operator with one index probe. Revoking sets
`revoked_at`; the row stays as history, and the operator id may be issued again (one live row per id).
"""

from alembic import op

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE operators (
            id           bigint GENERATED ALWAYS AS IDENTITY,
            operator_id  text NOT NULL,
            token_sha256 text NOT NULL,
            roles        text[] NOT NULL,
            groups       text[] NOT NULL DEFAULT '{}',
            tenant       text NOT NULL DEFAULT 'default',
            created_at   timestamptz NOT NULL DEFAULT now(),
            revoked_at   timestamptz,
            CONSTRAINT pk_operators PRIMARY KEY (id),
            CONSTRAINT uq_operators_token_sha256 UNIQUE (token_sha256),
            CONSTRAINT ck_operators_operator_id_not_empty CHECK (operator_id <> ''),
            CONSTRAINT ck_operators_token_sha256_hex CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
            CONSTRAINT ck_operators_roles_of_people CHECK (
                cardinality(roles) > 0 AND roles <@ ARRAY['viewer', 'agent', 'supervisor', 'admin', 'auditor']
            ),
            CONSTRAINT ck_operators_revoked_after_created CHECK (revoked_at IS NULL OR revoked_at >= created_at)
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX uq_operators_live_operator_id ON operators (operator_id) WHERE revoked_at IS NULL")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS operators")
