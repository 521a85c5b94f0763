"""Console sign-ins held server-side, so signing out (or expiry) ends a session even if its cookie was copied.

A row per sign-in: the SHA-256 of the session id the signed cookie carries (never the id itself), the
operator, and when it expires. Signing out deletes the row; a cookie whose row is gone signs no one in.
"""

from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE console_sessions (
            session_hash text NOT NULL,
            operator_id  text NOT NULL,
            created_at   timestamptz NOT NULL DEFAULT now(),
            expires_at   timestamptz NOT NULL,
            CONSTRAINT pk_console_sessions PRIMARY KEY (session_hash),
            CONSTRAINT ck_console_sessions_expires_after_created CHECK (expires_at > created_at)
        )
        """
    )
    op.execute("CREATE INDEX ix_console_sessions_expires_at ON console_sessions (expires_at)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS console_sessions")
