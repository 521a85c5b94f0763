"""The audit trail: every model action as one append-only, hash-chained, signed record in PostgreSQL."""
