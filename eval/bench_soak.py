"""Soak test: does the server's memory stay flat over many answers?

``python -m eval.bench_soak [--generator NAME] [--answers 300] [--warmup 20] [--every 10]``

Starts ``rag serve`` over the seed index (``make index`` first) with its default generator
(or ``--generator``, which is then the server's default too), asks the seed questions in
turn through ``POST /api/ask``, one at a time, and reads the server's resident memory
(VmRSS of its process) every ``--every`` answers. With a language model, an answer counts
when the model wrote it (the evidence gate abstains on some questions without asking it).
The first ``--warmup`` answers are not counted: models, caches and allocator arenas fill
up then. Prints a Markdown table, and writes it with a chart and the raw samples to
``eval/reports/bench_soak-<generator>.{md,json,png}``.

Targets: after warm-up, growth under 100 MB over 300 LLM answers and under 20 MB over
5,000 extractive answers.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from api.process import server_process
from eval.data import ROOT, load_seed

TARGET_MB = {"llama-cpp": 100.0, "openai": 100.0, "extractive": 20.0}


@dataclass(frozen=True)
class Sample:
    """The server's memory after ``answers`` answers (warm-up included) and ``asked`` questions."""

    answers: int
    rss_mb: float
    seconds: float
    asked: int


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux: /proc/PID/status VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def soak(url: str, pid: int, generator: str, total: int, every: int, warmup: int = 0) -> list[Sample]:
    """Ask questions one after another until ``total`` answers, sampling RSS every ``every``
    answers and at the end of the warm-up."""
    questions = [q.question for q in load_seed().questions]
    payload: dict[str, object] = {"generator": generator} if generator else {}
    samples = [Sample(0, rss_mb(pid), 0.0, 0)]
    answers = asked = 0
    started = time.monotonic()
    with httpx.Client(base_url=url, timeout=300) as http:
        while answers < total:
            response = http.post("/api/ask", json={**payload, "question": questions[asked % len(questions)]})
            response.raise_for_status()
            asked += 1
            usage = response.json()["usage"]
            if generator == "extractive" or usage["prompt_tokens"] > 0:
                answers += 1
                if answers % every == 0 or answers in (warmup, total):
                    samples.append(Sample(answers, rss_mb(pid), time.monotonic() - started, asked))
                    print(f"{answers:>6} answers  {samples[-1].rss_mb:8.1f} MB", file=sys.stderr, flush=True)
    return samples


def summary(samples: list[Sample], warmup: int) -> dict[str, float]:
    """Growth after warm-up: the last sample against the first one at or after the warm-up."""
    base = next(s for s in samples if s.answers >= warmup)
    last = samples[-1]
    after = [s.rss_mb for s in samples if s.answers >= warmup]
    return {
        "answers_after_warmup": last.answers - base.answers,
        "rss_at_warmup_mb": base.rss_mb,
        "rss_last_mb": last.rss_mb,
        "growth_mb": last.rss_mb - base.rss_mb,
        "peak_after_warmup_mb": max(after),
        "seconds": last.seconds,
    }


def table(samples: list[Sample], warmup: int) -> str:
    """The samples as Markdown, growth measured from the warm-up sample."""
    base = next(s for s in samples if s.answers >= warmup)
    rows = ["| answers | questions asked | RSS MB | since warm-up MB | seconds |", "|---|---|---|---|---|"]
    for s in samples:
        since = f"{s.rss_mb - base.rss_mb:+.1f}" if s.answers >= warmup else "(warm-up)"
        rows.append(f"| {s.answers} | {s.asked} | {s.rss_mb:.1f} | {since} | {s.seconds:.0f} |")
    return "\n".join(rows)


def chart(samples: list[Sample], warmup: int, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 3.5))
    axes.plot([s.answers for s in samples], [s.rss_mb for s in samples], marker=".")
    axes.axvline(warmup, color="grey", linestyle=":", label="end of warm-up")
    axes.set_xlabel("answers")
    axes.set_ylabel("server RSS (MB)")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", default="", help="asked for by every request (default: the server's)")
    parser.add_argument("--answers", type=int, default=300, help="answers counted after the warm-up")
    parser.add_argument("--warmup", type=int, default=20, help="answers before memory is counted")
    parser.add_argument("--every", type=int, default=10, help="sample RSS every N answers")
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "reports")
    args = parser.parse_args()
    log = Path(tempfile.gettempdir()) / "rag-soak.log"
    # The server's own default is the generator asked for, so that no other model is loaded.
    env = {"RAG_GENERATOR": args.generator} if args.generator else {}
    with server_process(env, log) as (url, server):
        name = args.generator or str(httpx.get(f"{url}/api/health", timeout=10).json()["generator"])
        samples = soak(url, server.pid, name, args.warmup + args.answers, args.every, args.warmup)
    result = summary(samples, args.warmup)
    target = TARGET_MB.get(name)
    markdown = table(samples, args.warmup)
    verdict = (
        f"{name}: {result['answers_after_warmup']:.0f} answers after {args.warmup} of warm-up, "
        f"RSS {result['rss_at_warmup_mb']:.0f} -> {result['rss_last_mb']:.0f} MB "
        f"(growth {result['growth_mb']:+.1f} MB, peak {result['peak_after_warmup_mb']:.0f} MB"
        + (f"; target < {target:.0f} MB: {'met' if result['growth_mb'] < target else 'NOT met'})" if target else ")")
    )
    print(markdown + "\n\n" + verdict)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"bench_soak-{name}"
    stem.with_suffix(".md").write_text(markdown + "\n\n" + verdict + "\n", encoding="utf-8")
    record = {"generator": name, **result, "samples": [asdict(s) for s in samples]}
    stem.with_suffix(".json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    chart(samples, args.warmup, f"rag serve RSS, {name} generator", stem.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
