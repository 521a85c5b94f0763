"""Seed data and replay: the bundled retail world, knowledge articles, and a deterministic change stream.

Everything here produces raw, vendor-shaped messages (Debezium change events, `kb_article` mapped
records) for the raw topics; the connectors turn them into canonical events like any other source.
"""
