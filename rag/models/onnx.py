"""Query vectors from onnxruntime: the same model, exported once, three times faster here.

On this machine's two cores an e5-small pass over a 20-token question takes 23 to 37 ms
in PyTorch and 11 ms in onnxruntime (fp32, 2 threads), and query embedding is what bounds
the server's throughput. The export is the model's own weights in fp32 (no quantisation),
so its vectors must agree with PyTorch's: ``OnnxQueryEncoder.verify`` checks that on probe
questions before the encoder is used, and the embedder keeps PyTorch when it does not.

Only models that mean-pool the last hidden state and normalise (the e5 family, the
embedded default) are exported; any other pooling stays on PyTorch.

The export must come from a model loaded with eager attention. Switching an already
loaded model's ``_attn_implementation`` gives a graph that disagrees with PyTorch
(cosine 0.99); loading it that way agrees to 1e-6.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from rag.errors import ModelError
from rag.fileio import atomic_path
from rag.lang import SAMPLE_QUESTIONS

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]
ONNX_FILE = "query-encoder.onnx"
# Questions of both languages and lengths the agreement check runs on.
PROBES = SAMPLE_QUESTIONS
MIN_AGREEMENT = 0.9999
INT8_FILE = "query-encoder-int8.onnx"
# int8 weights move vectors (cosine about 0.98 to fp32 on passages): this bar only catches
# a broken file; the evals decide whether int8 retrieves as well (README, "Embedding precision").
MIN_AGREEMENT_INT8 = 0.95
_IO_NAMES = ("input_ids", "attention_mask", "last_hidden_state")


def mean_pooling_model(model: SentenceTransformer) -> bool:
    """Is the model transformer -> mean pooling -> normalise (what this encoder computes)?"""
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    modules = list(model)
    if len(modules) != 3 or not isinstance(modules[0], Transformer) or not isinstance(modules[2], Normalize):
        return False
    pooling = modules[1]
    return (
        isinstance(pooling, Pooling)
        and getattr(pooling, "pooling_mode", None) in ("mean", ["mean"])
        and getattr(pooling, "include_prompt", True)
    )


def export_onnx(model_path: Path, target: Path) -> Path:
    """Export the transformer at ``model_path`` to ``target`` (atomic: written aside, renamed)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    class _LastHiddenState(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # type: ignore[no-any-return]

    model = AutoModel.from_pretrained(str(model_path), attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    sample = tokenizer(list(PROBES[:2]), padding=True, return_tensors="pt")
    axes = {"batch": 0, "tokens": 1}
    with atomic_path(target, prefix=".onnx-", sync=False) as tmp:
        # The tracer warns about Python conditions on shapes in transformers' masking code;
        # they hold for every input (the mask is as long as the input), and the agreement
        # check afterwards is what decides whether the export is used.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _LastHiddenState(model),
                (sample["input_ids"], sample["attention_mask"]),
                tmp,
                input_names=["input_ids", "attention_mask"],
                output_names=["last_hidden_state"],
                dynamic_axes={name: {v: k for k, v in axes.items()} for name in _IO_NAMES},
                opset_version=17,
                dynamo=False,
            )
    return target


def quantize_int8(source: Path, target: Path) -> Path:
    """``source`` with int8 weights (onnxruntime dynamic quantisation of the matrix products
    and the token embedding table: a quarter of the memory), written aside and renamed."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with atomic_path(target, prefix=".onnx-", sync=False) as tmp:
        quantize_dynamic(str(source), tmp, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gather"])
    return target


@dataclass(frozen=True)
class Verified:
    """What loading an export needs besides the file, written once its vectors passed the
    agreement check: later loads read the tokenizer and this, and never import PyTorch."""

    agreement: float
    onnx_bytes: int
    model_folder: str
    max_seq_length: int
    prompts: dict[str, str]


def _verified_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def read_verified(target: Path) -> Verified | None:
    """The check's record for ``target``, if it is for this very file."""
    try:
        verified = Verified(**json.loads(_verified_path(target).read_text(encoding="utf-8")))
        size = target.stat().st_size
    except (OSError, ValueError, TypeError):
        return None
    return verified if verified.onnx_bytes == size and Path(verified.model_folder).is_dir() else None


def write_verified(target: Path, verified: Verified) -> None:
    _verified_path(target).write_text(json.dumps(asdict(verified), ensure_ascii=False), encoding="utf-8")


def _mean_unit(hidden: Vectors, mask: npt.NDArray[np.int64]) -> Vectors:
    """Mean of each row's unmasked token vectors, scaled to length one."""
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return np.ascontiguousarray(pooled / np.where(norms == 0, 1, norms), dtype=np.float32)


class TokenizerFile:
    """The model's fast tokenizer read straight from its ``tokenizer.json`` with the
    ``tokenizers`` library: the same ids and offsets as transformers' tokenizer, without
    importing transformers (which imports PyTorch, half a gigabyte of a server's memory)."""

    def __init__(self, folder: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        try:
            self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except Exception as exc:  # tokenizers raises its own exception type, besides OSError and ValueError
            raise ModelError(f"cannot read the tokenizer in {folder}: {exc}") from exc
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length)
        self.pad_id = int(config.get("pad_token_id") or 0)
        self.max_length = max_length

    def batch(self, texts: list[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Token ids padded to the longest text, and the attention mask."""
        encodings = self._tokenizer.encode_batch(texts)
        width = max((len(e.ids) for e in encodings), default=0)
        ids = np.full((len(texts), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        return ids, mask

    def offsets(self, text: str) -> npt.NDArray[np.int64]:
        """Each token's (start, end) character offsets in ``text``; (0, 0) for special tokens."""
        return np.asarray(self._tokenizer.encode(text).offsets, dtype=np.int64).reshape(-1, 2)


class OnnxQueryEncoder:
    """Tokenise with the model's tokenizer, run the exported graph, mean-pool, normalise."""

    def __init__(self, onnx_path: Path, tokenizer: TokenizerFile, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for a bad file
            raise ModelError(f"cannot load {onnx_path}: {exc}") from exc
        self.tokenizer = tokenizer

    def _run(self, texts: list[str], prefix: str) -> tuple[Vectors, npt.NDArray[np.int64]]:
        """The last hidden state (batch, tokens, dimension) and the attention mask."""
        ids, mask = self.tokenizer.batch([prefix + text for text in texts])
        return self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0], mask

    def encode(self, texts: list[str], prefix: str = "") -> Vectors:
        """Unit vectors of ``prefix + text``, shape (len(texts), dimension)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        hidden, mask = self._run(texts, prefix)
        return _mean_unit(hidden, mask)

    def encode_tokens(self, texts: list[str], prefix: str, batch_size: int) -> tuple[Vectors, list[Vectors]]:
        """Unit vectors and each text's token vectors (padding dropped), in input order.

        Texts are batched by length, as sentence-transformers does, to pad little.
        """
        order = sorted(range(len(texts)), key=lambda n: len(texts[n]))
        pooled: list[Vectors] = [np.empty(0, dtype=np.float32)] * len(texts)
        tokens: list[Vectors] = [np.empty(0, dtype=np.float32)] * len(texts)
        for first in range(0, len(order), batch_size):
            rows = order[first : first + batch_size]
            hidden, mask = self._run([texts[n] for n in rows], prefix)
            for row, vector, states, row_mask in zip(rows, _mean_unit(hidden, mask), hidden, mask, strict=True):
                pooled[row] = vector
                tokens[row] = np.ascontiguousarray(states[: int(row_mask.sum())], dtype=np.float32)
        return np.stack(pooled), tokens

    @property
    def dimension(self) -> int:
        return int(self._session.get_outputs()[0].shape[-1])

    def agreement(self, reference: Vectors, texts: list[str], prefix: str) -> float:
        """The lowest cosine between this encoder's vectors and ``reference`` (the same texts)."""
        return float((self.encode(texts, prefix) * reference).sum(axis=1).min())
