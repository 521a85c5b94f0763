"""Ingest benchmark: `python bench/ingest.py` (same as `streamdesk bench ingest`); JSON on the last line."""

from streamdesk.cli.main import app

if __name__ == "__main__":
    app(["bench", "ingest"])
