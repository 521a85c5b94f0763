"""Retrain benchmark: `python bench/retrain.py` (same as `streamdesk bench retrain`); JSON on the last line."""

from streamdesk.cli.main import app

if __name__ == "__main__":
    app(["bench", "retrain"])
