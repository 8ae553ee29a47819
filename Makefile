# The two commands a newcomer needs: `make demo` and `make test`. Both build .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ncpx-installed

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint typecheck unit browser postgres bench soak clean lock

$(STAMP): pyproject.toml
	@ldconfig -p 2>/dev/null | grep -q 'libsodium\.so\.' || { \
		echo "installing Debian's libsodium23 (ristretto255 for private matching)"; \
		$(SUDO) apt-get update -q >/dev/null && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q libsodium23 >/dev/null; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# `ncpx demo --help` lists its options (--countries, --enquiries, --seed, --serve, --json).
demo: $(STAMP)
	@start=$$(date +%s.%N); $(BIN)/ncpx demo; status=$$?; \
	echo "make demo: $$(awk "BEGIN { printf \"%.1f\", $$(date +%s.%N) - $$start }") s in total"; exit $$status

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile

# The image's dependencies, pinned with their hashes (the Dockerfile installs nothing else): what ncpx runs on, and
# what builds the two that come as source (ncpx itself and pysodium). Run after changing the dependencies in
# pyproject.toml; tests/test_deploy.py fails while the lock misses one of them.
LOCK := $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
lock: $(STAMP)
	$(LOCK) --output-file requirements.lock pyproject.toml
	$(LOCK) --all-build-deps --only-build-deps --output-file requirements-build.lock pyproject.toml

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) browser postgres
	$(BIN)/pytest

# The dashboard's and the console's browser tests drive Debian's chromium (Playwright never downloads a browser of its own here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the dashboard's and the console's browser tests"; \
		$(SUDO) apt-get update -q >/dev/null && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium >/dev/null; }

# The coordinator's tests run on SQLite and on PostgreSQL: Debian's server binaries, for a throw-away cluster the
# tests start in a temporary folder (tests/postgres.py). Set NCPX_SKIP_POSTGRES=1 to skip those variants locally.
postgres:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
		echo "installing Debian's postgresql for the coordinator's tests on PostgreSQL"; \
		$(SUDO) apt-get update -q >/dev/null && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q postgresql >/dev/null; }

# Long fault and fuzz runs, not part of `make test`: 100 random SIGKILLs during exchange, 10^5 inputs per parser.
soak: $(STAMP)
	$(BIN)/pytest -m soak tests/soak --timeout 3600

bench: $(STAMP)
	$(BIN)/python bench/exchange.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
