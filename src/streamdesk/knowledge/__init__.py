"""Knowledge: chunking, embedding and the versioned document/chunk store (pgvector)."""
