# edgepack: `make demo` and `make test` do all the set-up on a fresh machine.
#  - Debian packages (cross compiler, QEMU) are installed with apt-get when run as root;
#    otherwise the exact sudo command is printed and the tests that need them are skipped.
#  - Python packages go into .venv (created here).

VENV        ?= .venv
PYTHON      ?= python3
PY          := $(VENV)/bin/python
EDGEPACK    := $(VENV)/bin/edgepack
APT_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
DEMO_DIR    := build/digits_mlp

.PHONY: help setup apt venv demo test lint clean

help:
	@echo "make demo   install what is needed, then train, package, verify and run the digits example"
	@echo "make test   install what is needed, then run ruff and the test suite"
	@echo "make clean  remove build outputs (keeps .venv)"

setup: apt venv

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
		echo "edgepack's Cortex-M tools are missing; install them with:"; \
		echo "  sudo apt-get install -y$$missing"; \
		echo "(continuing: tests that need them are skipped with a reason)"; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

demo: setup
	$(PY) examples/digits_mlp/train.py --out $(DEMO_DIR)
	$(EDGEPACK) check $(DEMO_DIR)/digits_mlp.onnx
	$(EDGEPACK) package $(DEMO_DIR)/digits_mlp.onnx --target host -o $(DEMO_DIR)/digits.edgepack \
		--golden $(DEMO_DIR)/test.npz --golden-count 32
	$(EDGEPACK) inspect $(DEMO_DIR)/digits.edgepack
	$(EDGEPACK) verify $(DEMO_DIR)/digits.edgepack
	$(EDGEPACK) run $(DEMO_DIR)/digits.edgepack --input $(DEMO_DIR)/test.npz -o $(DEMO_DIR)/pred.npz
	$(PY) examples/digits_mlp/score.py $(DEMO_DIR)/pred.npz $(DEMO_DIR)/test.npz

lint: venv
	$(VENV)/bin/ruff check .

test: setup lint
	$(PY) -m pytest -q

clean:
	rm -rf build .pytest_cache .ruff_cache
