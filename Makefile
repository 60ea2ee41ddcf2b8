# Every target installs what it needs, so a fresh Debian machine (as root) needs only
# `make demo` or `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# Debian's python3 is used for the venv: the rpm bindings (python3-rpm) that `specfile`
# needs exist only for the system interpreter, hence --system-site-packages.
SYSTEM_PYTHON := /usr/bin/python3
APT_PACKAGES := rpm createrepo-c dnf git python3-venv python3-rpm bubblewrap
# dnf repoclosure (the closure oracle of the tests); the tests of build driver `podman` (runc:
# crun cannot start containers on hosts with hybrid cgroups) and the Debian image they build
# once per machine; Debian's chromium for the dashboard's browser tests (Playwright drives it:
# its own browser download cannot reach its host here); PostgreSQL, whose server the suite
# starts itself in a temporary folder.
TEST_APT_PACKAGES := podman runc mmdebstrap dnf-plugins-core chromium postgresql
# wrk: the benchmarks' HTTP load generator (C: Python clients measured themselves).
BENCH_APT_PACKAGES := wrk
STAMPS := .stamps
DEMO_DIR := demo

.PHONY: demo test test-image lint bench setup clean

setup: $(STAMPS)/venv

# $(call apt_install,PACKAGES): installs those of PACKAGES that are missing (as root).
define apt_install
	@mkdir -p $(STAMPS)
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages: $$missing (run make as root, or install them)"; exit 1; fi; \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@touch $@
endef

$(STAMPS)/apt:
	$(call apt_install,$(APT_PACKAGES))

$(STAMPS)/test-apt: $(STAMPS)/apt Makefile
	$(call apt_install,$(TEST_APT_PACKAGES))

$(STAMPS)/venv: $(STAMPS)/apt pyproject.toml
	@test -x $(BIN)/python || $(SYSTEM_PYTHON) -m venv --system-site-packages $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

demo: setup
	$(BIN)/python examples/demo.py --dir $(DEMO_DIR)

lint: setup
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy

# The podman image of the tests: built from Debian's packages once per machine (cached by
# podman under a tag that names the recipe).
test-image: $(STAMPS)/test-apt setup
	$(BIN)/python tests/images/build_test_image.py

test: lint test-image
	$(BIN)/pytest -q

$(STAMPS)/bench-apt: $(STAMPS)/apt Makefile
	$(call apt_install,$(BENCH_APT_PACKAGES))

bench: setup test-image $(STAMPS)/bench-apt
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(STAMPS) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
