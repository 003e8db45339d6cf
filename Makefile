# mcdev.credentials — build and test entry points.
#   make test      everything CI runs: units, sanity, lint, integration
#   make emulator  the local Developers API emulator in the foreground
# The collection is copied (ansible-test refuses symlinks) to
# $(BUILD)/ansible_collections/mcdev/credentials and tested there.

PYTHON   ?= python3.11
BUILD    ?= $(CURDIR)/build
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

.PHONY: test venv layout units sanity lint integration emulator clean

test: units sanity lint integration
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

units: layout
	cd $(COLL) && $(BIN)/python -m pytest tests/unit -p no:cacheprovider -q -n 2

# ansible-test downloads get-pip for its per-test venvs; the stand-in uses the
# stdlib ensurepip instead, so sanity runs offline.
sanity: layout
	@pipv=$$(grep -oP "pip='\K[0-9.]+" $(VENV)/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | head -1); \
	mkdir -p $$HOME/.ansible/test/cache; \
	cp tests/tools/get_pip_offline.py $$HOME/.ansible/test/cache/get_pip_$$(echo $$pipv | tr . _).py
	cd $(COLL) && ansible-test sanity --python 3.11 --local --color no

lint: layout
	cd $(COLL) && ansible-lint --offline --profile production --nocolor

integration: layout
	cd $(COLL) && ansible-test integration --python 3.11 --local --color no

emulator: venv
	$(BIN)/python -m tests.emulator --port $${PORT:-8443} --state $${STATE:-$(BUILD)/emulator.sqlite} --ready-file $(BUILD)/emulator.ready.json

clean:
	rm -rf $(BUILD)
