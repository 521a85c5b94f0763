"""Agent benchmark: `python bench/agent.py` (same as `streamdesk bench agent`); JSON on the last line."""

from streamdesk.cli.main import app

if __name__ == "__main__":
    app(["bench", "agent"])
