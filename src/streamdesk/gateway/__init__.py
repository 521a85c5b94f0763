"""The webhook gateway: signed pushes from SaaS systems, kept in PostgreSQL and relayed verbatim to raw topics."""
