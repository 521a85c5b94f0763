"""The stream runtime: what every worker that moves records between PostgreSQL and the broker shares."""
