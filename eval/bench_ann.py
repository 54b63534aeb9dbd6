"""FAISS exact (flat) search against approximate indexes on synthetic unit vectors.

``python -m eval.bench_ann [--sizes 100000,1000000]``: for each corpus size, build a flat
inner-product index, an HNSW graph and an IVF index over clustered random vectors (384
dimensions, like multilingual-e5-small), then report recall@10 against flat, p50 query
latency (one query at a time, as the service asks), memory and build time. These numbers
decide ``rag.index.snapshot.index_type_for``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from eval.metrics import percentile

ROOT = Path(__file__).resolve().parent.parent
DIMENSION = 384
QUERIES = 200
K = 10

Matrix = npt.NDArray[np.float32]


def clustered_unit_vectors(n: int, dimension: int, seed: int) -> Matrix:
    """Vectors around 1,000 random centres, normalised: closer to text embeddings than uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, dimension)).astype(np.float32)
    out = np.empty((n, dimension), dtype=np.float32)
    step = 100_000
    for start in range(0, n, step):
        size = min(step, n - start)
        block = centres[rng.integers(0, len(centres), size)] + 0.6 * rng.standard_normal((size, dimension))
        out[start : start + size] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def _queries(data: Matrix, seed: int) -> Matrix:
    rng = np.random.default_rng(seed)
    picked = data[rng.integers(0, len(data), QUERIES)] + 0.05 * rng.standard_normal((QUERIES, data.shape[1]))
    unit: Matrix = (picked / np.linalg.norm(picked, axis=1, keepdims=True)).astype(np.float32)
    return unit


def _measure(index: object, queries: Matrix, truth: npt.NDArray[np.int64] | None) -> dict[str, float]:
    import faiss

    assert isinstance(index, faiss.Index)
    latencies = []
    found = []
    for query in queries:
        started = time.perf_counter()
        _, ids = index.search(query.reshape(1, -1), K)
        latencies.append((time.perf_counter() - started) * 1000)
        found.append(ids[0])
    result = {
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "memory_mb": faiss.serialize_index(index).nbytes / 2**20,
    }
    if truth is not None:
        hits = [len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)]
        result["recall_at_10"] = float(np.mean(hits))
    return result


def bench_size(n: int, hnsw_max: int) -> dict[str, dict[str, float]]:
    """Flat, HNSW and IVF over ``n`` vectors."""
    import faiss

    data = clustered_unit_vectors(n, DIMENSION, seed=n)
    queries = _queries(data, seed=n + 1)
    rows: dict[str, dict[str, float]] = {}

    started = time.perf_counter()
    flat = faiss.IndexFlatIP(DIMENSION)
    flat.add(data)
    build = time.perf_counter() - started
    _, truth = flat.search(queries, K)
    rows["flat"] = {"build_s": build, **_measure(flat, queries, truth)}

    if n <= hnsw_max:
        started = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(DIMENSION, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 64
        hnsw.add(data)
        build = time.perf_counter() - started
        for ef in (64, 128):
            hnsw.hnsw.efSearch = ef
            rows[f"hnsw M32 ef{ef}"] = {"build_s": build, **_measure(hnsw, queries, truth)}

    nlist = int(4 * np.sqrt(n))
    started = time.perf_counter()
    quantizer = faiss.IndexFlatIP(DIMENSION)
    ivf = faiss.IndexIVFFlat(quantizer, DIMENSION, nlist, faiss.METRIC_INNER_PRODUCT)
    sample = data[np.random.default_rng(0).choice(n, min(n, 40 * nlist), replace=False)]
    ivf.train(sample)
    ivf.add(data)
    build = time.perf_counter() - started
    for nprobe in (8, 32):
        ivf.nprobe = nprobe
        rows[f"ivf{nlist} nprobe{nprobe}"] = {"build_s": build, **_measure(ivf, queries, truth)}
    return rows


def main() -> int:
    """Run the sizes given and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated corpus sizes")
    parser.add_argument("--hnsw-max", type=int, default=1_000_000, help="skip HNSW above this size (slow to build)")
    args = parser.parse_args()
    results: dict[str, dict[str, dict[str, float]]] = {}
    lines = [
        "| vectors | index | recall@10 vs flat | p50 ms | p95 ms | memory MB | build s |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in (int(x) for x in args.sizes.split(",")):
        results[str(n)] = bench_size(n, args.hnsw_max)
        for name, row in results[str(n)].items():
            lines.append(
                f"| {n:,} | {name} | {row.get('recall_at_10', 1.0):.3f} | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} "
                f"| {row['memory_mb']:.0f} | {row['build_s']:.1f} |"
            )
        print("\n".join(lines), flush=True)
    reports = ROOT / "eval" / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "bench_ann.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (reports / "bench_ann.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
