"""The ONNX Runtime embedders agree with the PyTorch one (same vectors in fp32, nearly the same in int8)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from streamdesk.knowledge import embedders
from tests.retrieval.conftest import TOPICS

pytestmark = [pytest.mark.slow]


def test_onnx_embedders_agree_with_pytorch() -> None:
    texts = [f"{name}\n{text}" for name, text in TOPICS.items()] + ["where is my parcel?", "card blocked abroad"]
    reference = embedders.load_embedder(backend="torch", path=None, model_name="m", version="1").embed(texts)
    fp32 = embedders.load_embedder(backend="onnx", path=None, model_name="m", version="t").embed(texts)
    int8 = embedders.get_embedder().embed(texts)  # the default
    assert fp32.shape == int8.shape == reference.shape and fp32.dtype == np.float32
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    assert float((fp32 * reference).sum(1).min()) > 0.9999
    assert float((int8 * reference).sum(1).min()) > 0.98
    queries, docs = reference[-2:], reference[:-2]
    assert (
        np.argsort(-(queries @ docs.T), axis=1)[:, :3] == np.argsort(-(int8[-2:] @ int8[:-2].T), axis=1)[:, :3]
    ).all()


def test_an_unknown_backend_is_refused() -> None:
    from streamdesk.knowledge.exceptions import EmbedderLoadError

    backend: Any = "tpu"
    with pytest.raises(EmbedderLoadError, match="onnx-int8"):
        embedders.load_embedder(backend=backend, path=None, model_name="m", version="t")
