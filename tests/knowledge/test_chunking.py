"""Chunker: token windows, overlap, sentence/paragraph snapping, and its properties (hypothesis)."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamdesk.knowledge.chunking import Chunk, chunk_text, token_offsets
from streamdesk.knowledge.exceptions import ChunkingError
from tests.knowledge.factories import WORDS, prose


@pytest.fixture(scope="module")
def tokenizer(embedder: Any) -> Any:
    return embedder.tokenizer


def token_spans(text: str, chunks: list[Chunk], tokenizer: Any) -> list[tuple[int, int]]:
    """Each chunk as [first, last + 1) indices into the text's word pieces."""
    offsets = token_offsets(text, tokenizer=tokenizer)
    starts = {start: i for i, (start, _) in enumerate(offsets)}
    ends = {end: i + 1 for i, (_, end) in enumerate(offsets)}
    return [(starts[c.char_start], ends[c.char_end]) for c in chunks]


def check_properties(text: str, chunks: list[Chunk], tokenizer: Any, *, max_tokens: int, overlap: int) -> None:
    total = len(token_offsets(text, tokenizer=tokenizer))
    if total == 0:
        assert chunks == []
        return
    spans = token_spans(text, chunks, tokenizer)
    assert spans[0][0] == 0 and spans[-1][1] == total, "chunks cover the text from first to last token"
    for number, (chunk, (first, end)) in enumerate(zip(chunks, spans, strict=True)):
        assert chunk.chunk_no == number
        assert chunk.text and chunk.text == text[chunk.char_start : chunk.char_end]
        assert chunk.token_count == end - first, "token_count counts the chunk's word pieces"
        assert 1 <= chunk.token_count <= max_tokens
    for (_, previous_end), (first, _) in itertools.pairwise(spans):
        assert first == previous_end - overlap, "consecutive chunks share exactly `overlap` tokens"


def test_whitespace_only_text_has_no_chunks(tokenizer: Any) -> None:
    for text in ("", " ", "\n\n\t  \n"):
        assert chunk_text(text, tokenizer=tokenizer, max_tokens=100, overlap=10) == []


def test_short_text_is_one_chunk(tokenizer: Any) -> None:
    text = "Reset your password from the login page."
    chunks = chunk_text(f"  {text}  ", tokenizer=tokenizer, max_tokens=100, overlap=10)
    assert chunks == [Chunk(0, text, 2, 42, len(tokenizer.tokenize(text)))]


def test_windows_end_at_a_paragraph_end_in_their_last_quarter(tokenizer: Any) -> None:
    paragraphs = [prose(seed, words=45) for seed in range(8)]
    text = "\n\n".join(paragraphs)
    chunks = chunk_text(text, tokenizer=tokenizer, max_tokens=120, overlap=0)
    check_properties(text, chunks, tokenizer, max_tokens=120, overlap=0)
    for chunk in chunks[:-1]:
        assert text[chunk.char_end : chunk.char_end + 2] == "\n\n", "ends on a paragraph boundary"
        assert chunk.token_count >= 90


def test_windows_end_at_a_sentence_end_without_paragraphs(tokenizer: Any) -> None:
    text = prose(3, words=600)
    chunks = chunk_text(text, tokenizer=tokenizer, max_tokens=100, overlap=20)
    check_properties(text, chunks, tokenizer, max_tokens=100, overlap=20)
    assert len(chunks) > 5
    for chunk in chunks[:-1]:
        assert chunk.text.endswith("."), chunk.text[-30:]


def test_headings_stay_with_their_section(tokenizer: Any) -> None:
    sections = [f"## Section {i}\n\n{prose(i, words=40)}" for i in range(6)]
    text = "\n\n".join(sections)
    for chunk in chunk_text(text, tokenizer=tokenizer, max_tokens=100, overlap=0)[:-1]:
        assert not chunk.text.rstrip().splitlines()[-1].startswith("#")


def test_text_without_boundaries_is_cut_at_max_tokens(tokenizer: Any) -> None:
    text = " ".join(WORDS[i % len(WORDS)] for i in range(500))
    chunks = chunk_text(text, tokenizer=tokenizer, max_tokens=100, overlap=10)
    check_properties(text, chunks, tokenizer, max_tokens=100, overlap=10)
    assert [c.token_count for c in chunks[:-1]] == [100] * (len(chunks) - 1)


@pytest.mark.parametrize(("max_tokens", "overlap"), [(100, 51), (100, -1), (0, 0)])
def test_inconsistent_settings_are_refused(tokenizer: Any, max_tokens: int, overlap: int) -> None:
    with pytest.raises(ChunkingError, match="STREAMDESK_INGEST__CHUNK"):
        chunk_text("Some text.", tokenizer=tokenizer, max_tokens=max_tokens, overlap=overlap)


def test_chunking_a_long_document_is_fast(tokenizer: Any) -> None:
    text = prose(7, paragraphs=100, words=100)
    started = time.perf_counter()
    chunks = chunk_text(text, tokenizer=tokenizer, max_tokens=256, overlap=32)
    elapsed = time.perf_counter() - started
    check_properties(text, chunks, tokenizer, max_tokens=256, overlap=32)
    assert elapsed < 0.5, f"10,000 words took {elapsed:.3f}s"


pieces = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from([".", "!", "?", ",", '."', ")", "\n", "\n\n", "  ", "## ", "e.g.", "3.5", "don't"]),
    st.text(min_size=1, max_size=6),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    words=st.lists(pieces, max_size=400),
    max_tokens=st.integers(min_value=2, max_value=60),
    overlap_share=st.floats(min_value=0, max_value=0.5),
)
def test_chunk_properties(tokenizer: Any, words: list[str], max_tokens: int, overlap_share: float) -> None:
    text = " ".join(words)
    overlap = int(max_tokens * overlap_share)
    chunks = chunk_text(text, tokenizer=tokenizer, max_tokens=max_tokens, overlap=overlap)
    check_properties(text, chunks, tokenizer, max_tokens=max_tokens, overlap=overlap)
