# Kaifang: `make run` (the service with demo data) and `make test` (the whole suite).
# POSIX make syntax; developed with GNU make.

PYTHON = python3
VENV = .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed

.PHONY: venv system run test lint check

# The virtualenv, re-installed only when pyproject.toml changes.
venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[test]'
	touch $(STAMP)

# Debian packages the suite and the service use: ffmpeg, Chromium (browser tests), CJK fonts,
# and nginx with its stream module (deploy/nginx/, tested in tests/deploy/; not started here).
system:
	@missing=""; \
	$(PYTHON) -c 'import ensurepip' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	command -v ffmpeg >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	test -x /usr/sbin/nginx || missing="$$missing nginx"; \
	test -f /usr/lib/nginx/modules/ngx_stream_module.so || missing="$$missing libnginx-mod-stream"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing="$$missing fonts-noto-cjk"; \
	command -v pg_dump >/dev/null 2>&1 || missing="$$missing postgresql-client"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
		sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		echo "installing:$$missing"; \
		$$sudo apt-get update && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

run: system venv
	$(BIN)/kaifang demo
	$(BIN)/kaifang serve --host 127.0.0.1 --port 8000

# In parallel (pytest-xdist: a worker per core and one more unless TEST_WORKERS says; each takes
# the next test as it is free, the longest first: tests/conftest.py), the ten slowest named.
TEST_WORKERS = auto
test: system venv
	$(BIN)/pytest -n $(TEST_WORKERS) --maxschedchunk=1 --durations=10

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Models and migrations agree: upgrade a fresh SQLite database, then compare.
check: venv
	@tmp=$$(mktemp -d); \
	KAIFANG_DATA_DIR=$$tmp KAIFANG_DATABASE_URL=sqlite:///$$tmp/check.db $(BIN)/alembic upgrade head && \
	KAIFANG_DATA_DIR=$$tmp KAIFANG_DATABASE_URL=sqlite:///$$tmp/check.db $(BIN)/alembic check; \
	status=$$?; rm -rf $$tmp; exit $$status
