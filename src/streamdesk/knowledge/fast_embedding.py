"""A faster embedder: the same sentence-transformers model exported to ONNX Runtime, in fp32 or int8.

The model folder holds only PyTorch weights, so the first use exports the encoder (mean pooling and L2
normalisation included) to ONNX and, for `onnx-int8`, quantizes its MatMul weights to 8 bits in blocks
of 32 with int8 compute (`MatMulNBits`, activations quantized per block at run time).
Both files are cached under `<state_dir>/models/` (built under a file lock, so processes starting together
build them once, and written atomically) and reused afterwards. ONNX Runtime applies its full graph
optimisation (attention, GELU and LayerNorm fusion) when it loads the file. Inputs are sorted by length
before batching to keep padding small.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
from filelock import FileLock

from streamdesk.config import get_settings
from streamdesk.knowledge import embedding
from streamdesk.knowledge.exceptions import EmbedderLoadError

log = logging.getLogger(__name__)

Backend = Literal["torch", "onnx", "onnx-int8"]
BACKENDS: tuple[Backend, ...] = ("torch", "onnx", "onnx-int8")
EXPORT_FORMAT = 2
"""Bump when the exported graph or its quantization changes, so cached files are rebuilt."""
INT8_BLOCK = 32
"""Values per quantization block of weights and activations in the int8 model."""
ONNX_BATCH = 1
"""Texts per ONNX Runtime call: unpadded single sequences measured fastest on this CPU (see the report)."""


class _PooledEncoder:
    """Wraps a transformers encoder so the exported graph ends in mean pooling and L2 normalisation."""

    @staticmethod
    def build(model: Any) -> Any:
        import torch

        class PooledEncoder(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                hidden = self.model(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                ).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(pooled, dim=1)

        return PooledEncoder().eval()


def model_fingerprint(folder: Path) -> str:
    """A short hash of a model folder's configuration and weights' size, naming its cached exports."""
    digest = hashlib.sha256(str(EXPORT_FORMAT).encode())
    for name in ("config.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json"):
        path = folder / name
        if path.is_file():
            digest.update(name.encode() + path.read_bytes())
    for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def _atomic_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def export_onnx(*, model_path: Path, target: Path) -> Path:
    """Export the model at `model_path` (mean pooling + normalisation included) to the ONNX file `target`."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(model_path), local_files_only=True, attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
    sample = tokenizer(
        ["an example sentence", "another, somewhat longer example sentence"], padding=True, return_tensors="pt"
    )
    if "token_type_ids" not in sample:
        sample["token_type_ids"] = torch.zeros_like(sample["input_ids"])
    tmp = _atomic_target(target)
    axes = {0: "batch", 1: "tokens"}
    with torch.inference_mode():
        torch.onnx.export(
            _PooledEncoder.build(model),
            (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
            str(tmp),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["embedding"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, target)
    return target


def quantize_int8(*, source: Path, target: Path, block_size: int = INT8_BLOCK) -> Path:
    """Quantize `source`'s MatMul weights to 8 bits in blocks (MatMulNBits), computing in int8 on CPU.

    `accuracy_level=4` makes ONNX Runtime quantize the activations to int8 per block of `block_size`
    values at run time, instead of one scale per tensor as dynamic quantization does; that keeps
    outlier activations from flattening the rest, which is what costs dynamic int8 its recall.
    """
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    # the quantizer logs one INFO line per node it skips (hundreds): only its warnings reach `up`'s output
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)

    quantizer = MatMulNBitsQuantizer(
        onnx.load(str(source)),
        bits=8,
        block_size=block_size,
        is_symmetric=True,
        accuracy_level=4,
        op_types_to_quantize=("MatMul",),
    )
    quantizer.process()
    tmp = _atomic_target(target)
    quantizer.model.save_model_to_file(str(tmp), use_external_data_format=False)
    os.replace(tmp, target)
    return target


def onnx_file(*, model_path: Path, backend: Backend, cache_dir: Path) -> Path:
    """The cached ONNX file of `backend` for `model_path`, exported (and quantized) on first use."""
    if backend not in ("onnx", "onnx-int8"):
        raise EmbedderLoadError(f"backend {backend!r} has no ONNX file; use one of 'onnx', 'onnx-int8'")
    folder = cache_dir / f"onnx-embedder-{model_fingerprint(model_path)}"
    fp32 = folder / "model.onnx"
    target = fp32 if backend == "onnx" else folder / "model.int8.onnx"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):  # processes starting together (up's workers) build it once
        if not fp32.is_file():
            log.info("exporting %s to ONNX (once) into %s", model_path, folder)
            export_onnx(model_path=model_path, target=fp32)
        if not target.is_file():
            log.info("quantizing %s to int8 (once)", fp32)
            quantize_int8(source=fp32, target=target)
    return target


class OnnxEmbedder(embedding.BatchEmbedder):
    """The sentence embedder on ONNX Runtime (CPU): same interface and output as `embedding.Embedder`."""

    def __init__(
        self,
        *,
        path: str | Path | None = None,
        model_name: str,
        version: str,
        backend: Backend = "onnx-int8",
        batch_size: int = ONNX_BATCH,
        threads: int = 2,
        max_seq_length: int | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        folder = embedding.model_folder(path)
        super().__init__(model_name=model_name, version=version, batch_size=batch_size)
        settings = get_settings()
        cache_dir = cache_dir or settings.ingest.embedding_cache_dir or settings.state_dir / "models"
        self.onnx_path = onnx_file(model_path=folder, backend=backend, cache_dir=cache_dir)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(self.onnx_path), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.max_seq_length = max_seq_length or _configured_max_seq_length(folder)
        self.dimension = int(self._session.get_outputs()[0].shape[-1])
        self.backend = backend

    def _encode(self, texts: list[str]) -> np.ndarray:
        features = self._tokenize(texts, tensors="np")
        feed = {name: features[name].astype(np.int64) for name in self._inputs if name in features}
        if "token_type_ids" in self._inputs and "token_type_ids" not in feed:
            feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
        vectors = self._session.run(None, feed)[0]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.asarray(vectors / np.maximum(norms, 1e-12))


def _configured_max_seq_length(folder: Path) -> int:
    import json

    config = folder / "sentence_bert_config.json"
    if config.is_file():
        value = json.loads(config.read_text()).get("max_seq_length")
        if value:
            return int(value)
    return 512
