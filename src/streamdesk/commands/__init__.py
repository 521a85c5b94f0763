"""Commands to the systems of record: the outbox an approved write lands in, its relay, and its confirmation."""
