"""CPU threads per component: torch's thread count is process-wide, so each model sets its own around its work.

The agent's LLM and the embedder can live in one process (the agent worker searches knowledge): without
this, whichever loaded last would decide the thread count of both.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with torch using `threads` CPU threads (None: leave as is), restoring the count after."""
    if not threads:
        yield
        return
    import torch

    before = torch.get_num_threads()
    if before != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
