# make demo | make test | make bench — each works on a fresh clone: it creates .venv and installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.deepseek-installed
# `make demo` installs only what the demo runs (torch, ONNX Runtime, Optuna, the MobileNetV2 weights, the photos
# and Fashion-MNIST): not TensorFlow, Ray, Beam, ExecuTorch or TVM, which only the tests and other commands need
DEMO_STAMP := $(VENV)/.deepseek-demo-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TORCHINDUCTOR_CACHE_DIR := $(CURDIR)/.cache/inductor
export PYTHONUNBUFFERED := 1
# Debian packages: the Fashion-MNIST dataset (real labeled data), the arm64 cross toolchain + qemu, and
# Prometheus (its promtool checks the serving alert rules), PostgreSQL (the tune tests start one as study storage),
# Redis (the stream scale-out tests start one), and the fortune packages (real text labeled by language).
DEB_PACKAGES := dataset-fashion-mnist qemu-user g++-aarch64-linux-gnu prometheus postgresql redis-server \
	fortunes fortunes-de fortunes-es fortunes-it fortunes-pl fortunes-ru fortunes-cs fortunes-br fortunes-bg \
	fortunes-eo fortunes-ga fortunes-zh

DEMO_DEB_PACKAGES := dataset-fashion-mnist

# install the Debian packages named in $(1) that are missing (needs root; without it, say which and go on)
define deb_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) || echo "warning: could not install$$missing"; \
	  else echo "note: Debian packages not installed (need root):$$missing — tests that need them skip"; fi; \
	fi
endef

.PHONY: demo test test-fast bench lint doctor install clean peers-data

demo: $(DEMO_STAMP)
	$(PY) -m deepseek demo --output reports/demo

test: $(STAMP)
	$(PY) -m pytest -q --timeout=900 --durations=25

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" --timeout=600

bench: $(STAMP)
	$(PY) benchmarks/bench_runtimes.py --update-readme

# ydata-profiling in an environment of its own (its pins downgrade numpy, pandas, matplotlib and scipy);
# benchmarks/bench_data.py times its minimal report beside our profiler when this exists
peers-data:
	@test -x .venv-ydata/bin/python || $(PYTHON) -m venv .venv-ydata
	.venv-ydata/bin/python -m pip install -q ydata-profiling==4.18.4 pyarrow==25.0.1

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks

doctor: $(STAMP)
	$(PY) -m deepseek doctor

install: $(STAMP)

$(STAMP): pyproject.toml requirements/assets.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e ".[all]"
	$(PY) -m pip install -q --no-deps -r requirements/assets.txt
	$(call deb_install,$(DEB_PACKAGES))
	@touch $(STAMP) $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml requirements/demo-assets.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e ".[demo]"
	$(PY) -m pip install -q --no-deps -r requirements/demo-assets.txt
	$(call deb_install,$(DEMO_DEB_PACKAGES))
	@touch $(DEMO_STAMP)

clean:
	rm -rf $(VENV) .cache reports .pytest_cache
