"""Where the seed sets come from: the shared data folder and the small bundled copies."""

from __future__ import annotations

from pathlib import Path

from streamdesk.config import REPO_ROOT

BUNDLED_DIR = Path(__file__).resolve().parent / "data"
TAU2_REPO = "sierra-research/tau2-bench"
TAU2_COMMIT = "a2c024725189473d2d7cea3a5cfdbcc67478e41f"


def default_shared_data() -> Path:
    """`<repo>/../shared/data`, where the third-party data sets live (see its SOURCES.md)."""
    return Path(REPO_ROOT).parent / "shared" / "data"
