# Kaifang: `make run` (the service with demo data) and `make test` (the whole suite).
# POSIX make syntax; developed with GNU make.

PYTHON = python3
VENV = .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed

.PHONY: venv system run test lint check lock

# The virtualenv, re-installed only when pyproject.toml or the pinned versions change: the
# versions CI tested (constraints.txt), so a new release on PyPI cannot change what runs.
venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -c constraints.txt -e '.[test]'
	touch $(STAMP)

# New pins: the newest versions pyproject.toml's ranges allow, into constraints.txt (then run
# the suite before committing it).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q '.[test]'
	{ sed -n '/^#/p' constraints.txt; .lock-venv/bin/pip freeze --exclude-editable | \
		grep -v '^kaifang'; } > constraints.new && mv constraints.new constraints.txt
	rm -rf .lock-venv

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
