"""Retrieval: permission-aware hybrid search, citations, a semantic answer cache, embedding-model migration."""
