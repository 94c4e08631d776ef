# edgepack: `make demo` and `make test` do all the set-up on a fresh machine.
#  - Debian packages (cross compiler, QEMU) are installed with apt-get when run as root;
#    otherwise the exact sudo command is printed and the tests that need them are skipped.
#  - Python packages go into .venv (created here).

VENV        ?= .venv
PYTHON      ?= python3
PY          := $(VENV)/bin/python
EDGEPACK    := $(VENV)/bin/edgepack
APT_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm \
                gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static openssh-server cmake \
                yosys nextpnr-ice40 fpga-icestorm iverilog
DEMO_DIR    := build/digits
MLP_DIR     := build/digits_mlp

.PHONY: help setup apt venv demo demo-mlp test lint clean

help:
	@echo "make demo   install what is needed, then train a JAX CNN on digits, quantize it, run it on an emulated"
	@echo "            Cortex-M4 over the serial link and on the host runtime (examples/digits)"
	@echo "make demo-mlp  the smaller host-only example (examples/digits_mlp)"
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
		echo "edgepack's cross compilers, emulators and FPGA tools are missing; install them with:"; \
		echo "  sudo apt-get install -y$$missing"; \
		echo "(continuing: tests that need them are skipped with a reason)"; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	# The TensorFlow-free JAX route: litert-converter's own pins (xdsl -> typing-extensions<4.13) conflict
	# with pydantic and apache-tvm-ffi, and its converter module needs none of them (docs/frontends.md).
	$(PY) -m pip install -q --no-deps litert-converter==0.5.0
	@touch $@

demo: setup
	$(PY) examples/digits/demo.py --out $(DEMO_DIR)

demo-mlp: setup
	$(PY) examples/digits_mlp/train.py --out $(MLP_DIR)
	$(EDGEPACK) check $(MLP_DIR)/digits_mlp.onnx
	$(EDGEPACK) package $(MLP_DIR)/digits_mlp.onnx --target host -o $(MLP_DIR)/digits.edgepack \
		--golden $(MLP_DIR)/test.npz --golden-count 32
	$(EDGEPACK) inspect $(MLP_DIR)/digits.edgepack
	$(EDGEPACK) verify $(MLP_DIR)/digits.edgepack
	$(EDGEPACK) run $(MLP_DIR)/digits.edgepack --input $(MLP_DIR)/test.npz -o $(MLP_DIR)/pred.npz
	$(PY) examples/digits_mlp/score.py $(MLP_DIR)/pred.npz $(MLP_DIR)/test.npz

lint: venv
	$(VENV)/bin/ruff check .

test: setup lint
	$(PY) -m pytest -q

clean:
	rm -rf build .pytest_cache .ruff_cache
