"""Retrieval: permission-aware hybrid search, citations, the embedding cut-over."""
