"""The embedded runtime: a Tansu broker and PostgreSQL + pgvector, and the workers they serve."""
