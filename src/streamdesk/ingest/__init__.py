"""Ingest stream processors: raw vendor payloads -> canonical events -> chunks, vectors and rows."""
