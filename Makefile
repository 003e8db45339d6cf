# mcdev.credentials — build and test entry points.
#   make test      everything CI runs: ruff, units, sanity, lint, integration, reliability, molecule, bench-smoke
#   make ee        an execution environment's build context with this checkout's collection (ansible-builder)
#   make emulator  the local Developers API emulator in the foreground
# The collection is copied (ansible-test refuses symlinks) to
# $(BUILD)/ansible_collections/mcdev/credentials and tested there.

PYTHON   ?= python3.11
# The build tree lives outside the checkout: ansible-test lists a collection's files
# through git when it finds a .git above them, and build/ is ignored there, so a build
# inside the checkout would be skipped whole. One build tree per checkout path.
BUILD    ?= /tmp/mcdev-credentials-build-$(shell printf '%s' "$(CURDIR)" | cksum | cut -d' ' -f1)
VENV     ?= $(BUILD)/venv
COLL      = $(BUILD)/ansible_collections/mcdev/credentials
BIN       = $(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(BUILD)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export ANSIBLE_FORCE_COLOR := 0
export PY_COLORS := 0
export NO_COLOR := 1
export ANSIBLE_HOST_KEY_CHECKING := False
export ANSIBLE_LINT_SKIP_SCHEMA_UPDATE := 1

SHELL := /bin/bash
# Run a stage's command and print how long it took, keeping its exit status.
timed = start=$$(date +%s); $(1); rc=$$?; echo "\#\#\# stage $@: $$(( $$(date +%s) - start )) s (exit $$rc)"; exit $$rc

.PHONY: test venv layout ruff units sanity lint integration emulator clean demo

test: ruff units sanity lint integration reliability molecule bench-smoke
	@echo "make test: all stages passed"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip check
	@touch $@

venv: $(VENV)/.installed

# A fresh copy every run, so deleted files do not linger in the build tree.
layout: venv
	rm -rf $(COLL)
	mkdir -p $(COLL)
	tar -C $(CURDIR) --exclude=./build --exclude=./.git --exclude=./tests/output \
	    --exclude=./.ansible --exclude=./collections --exclude='__pycache__' -cf - . | tar -C $(COLL) -xf -

# ruff.toml: pycodestyle, pyflakes, bugbear and pylint's error/warning rules over plugins, tests and bench.
ruff: layout
	@cd $(COLL) && $(call timed,$(BIN)/ruff check --no-cache .)

units: layout
	@cd $(COLL) && $(call timed,$(BIN)/python -m pytest tests/unit -p no:cacheprovider -q -n 2)

# ansible-test downloads get-pip for its per-test venvs; the stand-in uses the
# stdlib ensurepip instead, so sanity runs offline.
sanity: layout
	@pipv=$$(grep -oP "pip='\K[0-9.]+" $(VENV)/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | head -1); \
	mkdir -p $$HOME/.ansible/test/cache; \
	cp tests/tools/get_pip_offline.py $$HOME/.ansible/test/cache/get_pip_$$(echo $$pipv | tr . _).py
	@cd $(COLL) && $(call timed,ansible-test sanity --python 3.11 --local --color no)

lint: layout
	@cd $(COLL) && $(call timed,ansible-lint --offline --profile production --nocolor)

# integration: every target runs (--continue-on-error) and the stage fails if any failed.
# One emulator for all targets (tests/integration/emulator_ctl.py); its facts reach
# the targets as the extra var mc_emulator through integration_config.yml in the build tree. The
# emulator is stopped whatever ansible-test's outcome, and ansible-test's exit status is kept.
EMULATOR_IT = $(BUILD)/emulator-integration
integration: layout
	cd $(COLL) && $(BIN)/python tests/integration/emulator_ctl.py start $(EMULATOR_IT) tests/integration/integration_config.yml
	@cd $(COLL) && start=$$(date +%s); ansible-test integration --python 3.11 --local --color no --continue-on-error $(TARGETS); rc=$$?; \
	    $(BIN)/python tests/integration/emulator_ctl.py stop $(EMULATOR_IT); \
	    echo "### stage $@: $$(( $$(date +%s) - start )) s (exit $$rc)"; exit $$rc

emulator: venv
	$(BIN)/python -m tests.emulator --port $${PORT:-8443} --state $${STATE:-$(BUILD)/emulator.sqlite} --ready-file $(BUILD)/emulator.ready.json

clean:
	rm -rf $(BUILD)

# The collection tarball to install (ansible-galaxy collection install <file>) or to put in an execution
# environment; galaxy.yml's build_ignore keeps what a run leaves in the checkout out of it.
DIST ?= $(BUILD)/dist
.PHONY: dist
dist: venv
	mkdir -p $(DIST)
	$(BIN)/ansible-galaxy collection build --force --output-path $(DIST) $(CURDIR)

# An execution environment for AWX with this checkout's collection: ansible-builder create on
# extensions/ee/execution-environment.yml (no container engine needed); build the image from what it prints.
.PHONY: ee
ee: venv
	$(BIN)/python tests/tools/ee_context.py $(BUILD)/ee

# The molecule scenario (extensions/molecule/rotation): the emulator, two local and two namespace SSH hosts,
# converge = playbooks/rotate.yml, idempotence, verify from every host. Needs root (network namespaces).
.PHONY: molecule
molecule: layout
	@cd $(COLL) && $(call timed,$(BIN)/molecule test -s rotation)

# The whole story against the emulator: projects, a fleet of six hosts, rotations, the expiry report.
demo: venv
	$(BIN)/python tests/tools/demo.py $(BUILD)

# The README's picture: the report of a demo fleet, rendered by headless Chromium (Debian's package,
# installed when missing) into docs/img/expiry-report.png; also prints size and render figures for 500.
.PHONY: report-screenshot
report-screenshot: layout
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; }
	cd $(COLL) && $(BIN)/python tests/tools/report_screenshot.py $(BUILD)/report-screenshot --png $(CURDIR)/docs/img/expiry-report.png
	cd $(COLL) && $(BIN)/python tests/tools/report_screenshot.py $(BUILD)/report-screenshot --count 500 --png $(BUILD)/report-screenshot/expiry-report-500.png

# Benchmarks against community.crypto and the Ansible floor (bench/, docs/performance.md); not part of
# `make test` except the one-round smoke run. community.crypto comes from the PyPI ansible package in its
# own venv (collections only: ansible-playbook is ours on both sides). BENCH_ARGS e.g. "--only P1,P3 -v".
# --no-compile: pip would byte-compile the package's ~30,000 files (16 of the 28 s it takes); only
# community.crypto is used, so only it is compiled (PYTHONDONTWRITEBYTECODE may be set, so Python would not
# cache what it compiles on import).
ANSIBLE_FULL ?= $(BUILD)/ansible-full
ANSIBLE_PKG  ?= ansible==12.3.0
.PHONY: bench bench-smoke ansible-full
ansible-full:
	@ls -d $(ANSIBLE_FULL)/lib/python3*/site-packages/ansible_collections/community/crypto >/dev/null 2>&1 || \
	    { $(PYTHON) -m venv $(ANSIBLE_FULL) && $(ANSIBLE_FULL)/bin/pip install -q --no-deps --no-compile $(ANSIBLE_PKG) && \
	      $(ANSIBLE_FULL)/bin/python -m compileall -q $(ANSIBLE_FULL)/lib/python3*/site-packages/ansible_collections/community/crypto; }

bench: layout ansible-full
	@$(call timed,$(BIN)/python bench/run.py --collections $(BUILD) --ansible-full $(ANSIBLE_FULL) $(BENCH_ARGS))

bench-smoke: layout ansible-full
	@$(call timed,$(BIN)/python bench/run.py --collections $(BUILD) --ansible-full $(ANSIBLE_FULL) --smoke $(BENCH_ARGS))

# Reliability suites (tests/reliability, docs/reliability.md): crash at every step, API faults, bad input,
# secrets in logs, file modes and planted symlinks, concurrent runs. `reliability` is the short set (CI);
# `soak` the long one (< 30 min), which prints the R1-R6 figures at the end.
.PHONY: reliability soak
reliability: layout
	@rm -f $(BUILD)/reliability-figures.jsonl
	@cd $(COLL) && $(call timed,$(BIN)/python -m pytest tests/reliability -p no:cacheprovider -q -m "not soak")

# The long shards run longest first on SOAK_WORKERS xdist workers; knobs: docs/reliability.md.
SOAK_WORKERS ?= 4
soak: layout
	@rm -f $(BUILD)/reliability-figures.jsonl
	@cd $(COLL) && $(call timed,$(BIN)/python -m pytest tests/reliability -p no:cacheprovider -q -n $(SOAK_WORKERS) -m "not quick" $(SOAK_ARGS))
