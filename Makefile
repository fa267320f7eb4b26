# PeerGuard. `make test` and `make demo` set everything up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TOOLS  := .venv-tools
LINT   := .venv-lint
C7N    := .venv-c7n
FLOWLOGS := .venv-flowlogs
STAMP  := $(VENV)/.installed
# sam build needs python3.13 on PATH; pyenv provides it when asked.
export PYENV_VERSION ?= 3.11.7:3.12.1:3.13.0

.PHONY: test demo bench fuzz lint security-lint sam-validate sam-build ci clean stackset stackset-member

$(STAMP): requirements/runtime.txt requirements/dev.txt requirements/dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements/dev.txt -c requirements/dev.lock
	$(BIN)/pip install -q -e '.[demo]' -c requirements/dev.lock  # peerguard and the lab
	touch $@

test: $(STAMP)
	$(BIN)/pytest -m "not bench"

demo: $(STAMP)
	$(BIN)/peerguard demo

# 10,000 mutated inputs per entry point through the real handlers: 0 may escape.
FUZZ_COUNT ?= 10000
fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz.run --count $(FUZZ_COUNT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	for f in functions/*/app.py; do $(BIN)/mypy "$$f" || exit 1; done
	$(BIN)/cfn-lint template.yaml org/*.yaml
	$(MAKE) security-lint

# The SAM CLI pins boto3 exactly, so it gets a virtualenv of its own.
$(TOOLS)/.installed: requirements/tools.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --upgrade pip
	$(TOOLS)/bin/pip install -q -r requirements/tools.txt
	touch $@

# checkov and parliament pin their own dependencies (boto3, pydantic...): a virtualenv of
# their own. checkov never calls out (--skip-download); skipped checks are justified in
# each resource's Metadata. parliament lints every policy of the SAM-translated template
# (translated in .venv-tools, which has the SAM translator); findings that stay are
# justified in tools/iam_lint_allow.yaml.
$(LINT)/.installed: requirements/lint.txt requirements/lint.lock
	$(PYTHON) -m venv $(LINT)
	$(LINT)/bin/pip install -q --upgrade pip
	$(LINT)/bin/pip install -q -r requirements/lint.txt -c requirements/lint.lock
	touch $@

security-lint: $(LINT)/.installed $(TOOLS)/.installed
	$(LINT)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f template.yaml $(wildcard org/*.yaml)
	$(TOOLS)/bin/python tools/iam_lint.py translate template.yaml > .iam-lint.json
	$(LINT)/bin/python tools/iam_lint.py lint .iam-lint.json
	rm -f .iam-lint.json

sam-validate: $(TOOLS)/.installed
	SAM_CLI_TELEMETRY=0 $(TOOLS)/bin/sam validate --lint --region us-east-1

sam-build: $(TOOLS)/.installed
	SAM_CLI_TELEMETRY=0 PATH="$$(pyenv root 2>/dev/null)/shims:$$PATH" $(TOOLS)/bin/sam build

# Cloud Custodian, measured beside PeerGuard by the benchmark, in its own virtualenv.
$(C7N)/.installed: requirements/c7n.txt
	$(PYTHON) -m venv $(C7N)
	$(C7N)/bin/pip install -q -r requirements/c7n.txt
	touch $@

# flowlogs-reader, measured beside the flow engine by the benchmark, in its own virtualenv.
$(FLOWLOGS)/.installed: requirements/flowlogs.txt
	$(PYTHON) -m venv $(FLOWLOGS)
	$(FLOWLOGS)/bin/pip install -q -r requirements/flowlogs.txt
	touch $@

bench: $(STAMP) $(C7N)/.installed $(FLOWLOGS)/.installed
	$(BIN)/python -m tests.bench.run --c7n $(C7N)/bin/custodian
	$(BIN)/python -m tests.bench.flows --flowlogs-python $(FLOWLOGS)/bin/python
	$(BIN)/python -m tests.bench.coldstart --hot-spots 8
	$(BIN)/python -m tests.bench.accounts
	$(BIN)/python -m tests.bench.security
	$(BIN)/python -m tests.bench.path
	$(BIN)/python -m tests.bench.announce
	$(BIN)/python -m tests.bench.soak

# Every account of the OUs in org/parameters.json, new ones included (service-managed
# StackSets, auto-deployment): prints the commands; RUN=1 runs them.
stackset:
	$(PYTHON) org/stackset.py peerguard $(if $(RUN),--run)

stackset-member:
	$(PYTHON) org/stackset.py member $(if $(RUN),--run)

ci: test lint sam-validate sam-build

clean:
	rm -rf $(VENV) $(TOOLS) $(LINT) $(C7N) $(FLOWLOGS) .aws-sam .iam-lint.json
