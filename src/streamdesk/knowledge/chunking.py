"""Token-aware chunking: overlapping windows of word pieces, snapped back to sentence or paragraph ends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamdesk.knowledge.exceptions import ChunkingError

SNAP_FRACTION = 0.25
"""A window's end moves back to a sentence or paragraph end found in this last fraction of it."""

_SENTENCE_END = frozenset(".!?\u2026\u3002\uff01\uff1f")
_CLOSERS = frozenset("\"')]}\u201d\u2019\u00bb")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One window of a document: its text, where it lies in the document, and its size in tokens."""

    chunk_no: int
    text: str
    char_start: int
    char_end: int
    token_count: int


def token_offsets(text: str, *, tokenizer: Any) -> list[tuple[int, int]]:
    """Character spans of `text`'s word pieces (no special tokens), from one fast-tokenizer call."""
    encoded = tokenizer(
        text,
        add_special_tokens=False,
        return_offsets_mapping=True,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    return [(int(start), int(end)) for start, end in encoded["offset_mapping"]]


def chunk_text(text: str, *, tokenizer: Any, max_tokens: int, overlap: int) -> list[Chunk]:
    """Split `text` into windows of at most `max_tokens` word pieces sharing `overlap` pieces."""
    if max_tokens < 1:
        raise ChunkingError(f"max_tokens={max_tokens} must be at least 1; raise STREAMDESK_INGEST__CHUNK_TOKENS")
    if not 0 <= overlap <= max_tokens // 2:
        raise ChunkingError(
            f"overlap={overlap} must lie in 0..{max_tokens // 2} (half of max_tokens={max_tokens}); "
            "lower STREAMDESK_INGEST__CHUNK_OVERLAP or raise STREAMDESK_INGEST__CHUNK_TOKENS"
        )
    if not text or text.isspace():
        return []
    offsets = token_offsets(text, tokenizer=tokenizer)
    total = len(offsets)
    chunks: list[Chunk] = []
    start = 0
    while start < total:
        end = min(start + max_tokens, total)
        if end < total:
            snap_span = max(1, int(max_tokens * SNAP_FRACTION))
            end = _snap_end(text, offsets, end=end, earliest=max(start + overlap + 1, end - snap_span))
        char_start, char_end = offsets[start][0], offsets[end - 1][1]
        chunks.append(Chunk(len(chunks), text[char_start:char_end], char_start, char_end, end - start))
        if end == total:
            break
        start = end - overlap
    return chunks


def _snap_end(text: str, offsets: list[tuple[int, int]], *, end: int, earliest: int) -> int:
    """The latest paragraph end in `earliest..end`, else the latest sentence end there, else `end`."""
    sentence_end = 0
    for cut in range(end, earliest - 1, -1):
        gap = text[offsets[cut - 1][1] : offsets[cut][0]]
        if gap.count("\n") >= 2 and not _after_heading(text, offsets[cut - 1][1]):
            return cut
        if not sentence_end and gap and ("\n" in gap or _ends_sentence(text, offsets, cut - 1)):
            sentence_end = cut
    return sentence_end or end


def _after_heading(text: str, position: int) -> bool:
    """Whether the line ending at `position` is a Markdown heading (a chunk should not end on one)."""
    line_start = text.rfind("\n", 0, position) + 1
    return text.startswith("#", line_start)


def _ends_sentence(text: str, offsets: list[tuple[int, int]], index: int) -> bool:
    """Whether word piece `index` ends a sentence (a full stop, possibly followed by a closing quote)."""
    start, end = offsets[index]
    if index > 0 and text[end - 1] in _CLOSERS and offsets[index - 1][1] == start:
        start, end = offsets[index - 1]
    return text[end - 1] in _SENTENCE_END
