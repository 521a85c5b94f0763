"""The PyTorch embedder: shape, normalisation, order restored after length sorting, agreement with the model.

The default embedder (ONNX int8) is tested against it in tests/retrieval/test_fast_embedding.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from streamdesk.knowledge import embedders, embedding
from streamdesk.knowledge.exceptions import EmbedderLoadError
from tests.knowledge.factories import prose


@pytest.fixture(scope="module")
def torch_embedder() -> embedding.Embedder:
    """The PyTorch fp32 embedder (embedding version 1)."""
    return embedding.Embedder(path=None, model_name="all-MiniLM-L6-v2", version="1")


def test_vectors_are_normalised_float32_in_input_order(torch_embedder: embedding.Embedder) -> None:
    texts = [prose(seed, words=words) for seed, words in enumerate([5, 150, 30, 90, 1, 60])]
    vectors = torch_embedder.embed(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    one_by_one = np.vstack([torch_embedder.embed([text]) for text in texts])
    np.testing.assert_allclose(vectors, one_by_one, atol=1e-5)


def test_vectors_match_sentence_transformers_encode(torch_embedder: embedding.Embedder) -> None:
    texts = [embedding.embedding_input("Refunds", prose(seed, words=120)) for seed in range(10)]
    expected = torch_embedder._model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(torch_embedder.embed(texts), expected, atol=1e-5)


def test_empty_input_gives_an_empty_matrix(torch_embedder: embedding.Embedder) -> None:
    assert torch_embedder.embed([]).shape == (0, 384)


def test_properties_come_from_the_model_and_settings(torch_embedder: embedding.Embedder) -> None:
    assert (torch_embedder.model_name, torch_embedder.version) == ("all-MiniLM-L6-v2", "1")
    assert torch_embedder.dimension == 384
    assert torch_embedder.max_seq_length == 256
    assert torch_embedder.tokenizer.is_fast


def test_the_embedder_is_cached_per_process(embedder: embedding.BatchEmbedder) -> None:
    assert embedders.get_embedder() is embedder
    assert (embedder.model_name, embedder.version) == ("all-MiniLM-L6-v2", "2-onnx-int8")


def test_a_missing_model_folder_is_reported(tmp_path: object) -> None:
    with pytest.raises(EmbedderLoadError, match="STREAMDESK_INGEST__EMBEDDING_PATH"):
        embedding.Embedder(path=str(tmp_path), model_name="m", version="1")
