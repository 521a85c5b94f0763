"""Which sentence embedder a process uses, by settings: PyTorch (`embedding`) or ONNX Runtime (`fast_embedding`)."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from streamdesk.config import get_settings
from streamdesk.knowledge.embedding import BatchEmbedder, Embedder
from streamdesk.knowledge.exceptions import EmbedderLoadError
from streamdesk.knowledge.fast_embedding import BACKENDS, ONNX_BATCH, Backend, OnnxEmbedder

log = logging.getLogger(__name__)


def load_embedder(
    *,
    backend: Backend,
    path: str | Path | None,
    model_name: str,
    version: str,
    batch_size: int | None = None,
    threads: int = 2,
) -> Any:
    """An embedder for `backend`: the PyTorch `embedding.Embedder`, or `OnnxEmbedder` in fp32 or int8.

    `batch_size` None means each backend's best: 64 for PyTorch, `ONNX_BATCH` for ONNX Runtime.
    """
    if backend == "torch":
        return Embedder(path=path, model_name=model_name, version=version, batch_size=batch_size or 64, threads=threads)
    if backend not in BACKENDS:
        raise EmbedderLoadError(f"embedding backend {backend!r} is not known; use one of {', '.join(BACKENDS)}")
    return OnnxEmbedder(
        path=path,
        model_name=model_name,
        version=version,
        backend=backend,
        batch_size=batch_size or ONNX_BATCH,
        threads=threads,
    )


@lru_cache(maxsize=4)
def cached_embedder(*, backend: Backend, path: str | None, model_name: str, version: str) -> Any:
    """A process-wide embedder per (backend, path, model, version), for query-time embedding."""
    ingest = get_settings().ingest
    return load_embedder(
        backend=backend,
        path=path,
        model_name=model_name,
        version=version,
        batch_size=ingest.embed_batch if backend == "torch" else None,
        threads=ingest.torch_threads,
    )


@lru_cache(maxsize=1)
def get_embedder() -> BatchEmbedder:
    """The process-wide embedder, loaded on first use from the current settings."""
    settings = get_settings().ingest
    embedder: BatchEmbedder = load_embedder(
        backend=settings.embedding_backend,
        path=settings.embedding_path,
        model_name=settings.embedding_model,
        version=settings.embedding_version,
        batch_size=settings.embed_batch if settings.embedding_backend == "torch" else None,
        threads=settings.torch_threads,
    )
    log.info(
        "embedder %s v%s loaded (max_seq_length %d)", embedder.model_name, embedder.version, embedder.max_seq_length
    )
    return embedder
