# Every target installs what it needs into .venv first; a fresh clone needs only python3 and make.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install run demo test lint format chaos clean

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@command -v redis-server >/dev/null || { \
	  echo "redis-server missing: installing Debian's package"; \
	  (apt-get update -qq && apt-get install -y -qq redis-server) >/dev/null; }
	@command -v chromium >/dev/null || { \
	  echo "chromium missing: installing Debian's package (the status page's browser test)"; \
	  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null; }
	touch $(STAMP)

# A small live cluster with the example config: private redis-server, a Celery worker and
# three scheduler nodes. Ctrl-C stops everything it started.
run: install
	$(PY) tools/localcluster.py --config config/scheduler.toml

# The same cluster as a scripted tour that ends by itself: jobs fire, the leader is killed,
# another node takes over, and the slots are counted.
demo: install
	$(PY) tools/localcluster.py --config config/scheduler.toml --demo

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# The long chaos variants (about 40 minutes on two cores): a hundred leader kills, a 30 s broker
# outage, repeated zombies, partitions, Redis restarts and Sentinel failovers. `make test` runs
# the short ones. Each run appends its figures to .chaos-results/results.jsonl; the table of
# docs/guarantees.md comes from `$(PY) -m tests.chaos.report`.
chaos: install
	CHAOS_LONG=1 $(PY) -m pytest tests/chaos $(PYTEST_ARGS)
	$(PY) -m tests.chaos.report --variant long

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info

# Benchmarks beside celery beat and RedBeat (bench/, docs/performance.md): about 35 minutes;
# `make bench BENCH_ARGS=--quick` is a 10-minute sanity run. The peers get their own venv.
.PHONY: bench
BENCH_PY   := bench/.venv-peers/bin/python
BENCH_ARGS ?=
bench: install bench/.venv-peers/.installed
	$(BENCH_PY) bench/run.py $(BENCH_ARGS); status=$$?; $(BENCH_PY) bench/report.py && exit $$status

bench/.venv-peers/.installed: bench/requirements-peers.txt
	python3 -m venv bench/.venv-peers
	bench/.venv-peers/bin/pip install --quiet --upgrade pip
	bench/.venv-peers/bin/pip install --quiet -r bench/requirements-peers.txt
	touch $@
