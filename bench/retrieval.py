"""Retrieval benchmark: `python bench/retrieval.py` (same as `streamdesk bench retrieval`); JSON on the last line."""

from streamdesk.cli.main import app

if __name__ == "__main__":
    app(["bench", "retrieval"])
