# The two set-up commands: `make run` (serve the gallery) and `make test` (everything CI runs).
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet
TEST_SETTINGS := DJANGO_SETTINGS_MODULE=gallery_project.settings_test
PYTEST_ARGS ?=

.PHONY: run test install install-dev lint check-migrations test-sqlite test-postgres test-s3 test-redis bench clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "make: Python 3.11 or newer is needed (python3.11, python3.12, ...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install --upgrade pip
	$(PIP) install -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(PIP) install -e '.[dev]'
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Serve on http://127.0.0.1:$PORT (default 8000): gunicorn and the supervised django-q2 worker (manage.py
# run_worker, which restarts the cluster when it breaks, never the web server); Ctrl-C stops both.
# PORT from the environment wins over .env, as it does for every other setting.
run: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py setup_schedules
	$(BIN)/python manage.py ensure_superuser
	$(BIN)/honcho start --procfile Procfile \
		$$(if [ -n "$$PORT" ]; then echo "--port $$PORT"; elif ! grep -qs '^PORT=' .env; then echo "--port 8000"; fi)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(TEST_SETTINGS) $(BIN)/mypy

check-migrations: $(VENV)/.installed-dev
	$(TEST_SETTINGS) $(BIN)/python manage.py makemigrations --check --dry-run
	$(TEST_SETTINGS) $(BIN)/python manage.py check --fail-level WARNING

test-sqlite: $(VENV)/.installed-dev
	DATABASE_URL=sqlite://:memory: $(BIN)/pytest $(PYTEST_ARGS)

# The PostgreSQL pass runs when TEST_DATABASE_URL is set (it must then answer) or a local server answers.
test-postgres: $(VENV)/.installed-dev
	@url="$${TEST_DATABASE_URL:-}"; \
	if [ -z "$$url" ]; then \
		if $(BIN)/python -c 'import socket; socket.create_connection(("127.0.0.1", 5432), 1)' 2>/dev/null; then \
			url=postgresql://postgres@127.0.0.1:5432/test; \
		else echo "No PostgreSQL on 127.0.0.1:5432 and TEST_DATABASE_URL unset: PostgreSQL pass skipped."; exit 0; fi; \
	fi; \
	echo "PostgreSQL pass on $$url"; \
	DATABASE_URL="$$url" $(BIN)/pytest $(PYTEST_ARGS)

# The tests whose tasks go through django-q2's broker once more with it on Redis (REDIS_URL, default a Redis on
# 127.0.0.1, db 9): the worker's (its process tests run whole stacks on it: kills, restarts, eight steps), and
# those that enqueue or schedule for real (pods, model installs, board imports, the schedules). The rest never
# reach the broker: the whole suite again took CI's time for nothing. .ci/run runs it.
REDIS_TESTS := worker/tests backends/tests gallery_project/tests/test_checks_and_schedules.py \
	generation/tests/test_model_installs.py generation/tests/test_library_pages.py generation/tests/test_queue.py \
	generation/tests/test_flow.py albums/tests/test_boards.py photos/tests/test_ai_recipe.py
test-redis: $(VENV)/.installed-dev
	REDIS_URL="$${REDIS_URL:-redis://127.0.0.1:6379/9}" DATABASE_URL=sqlite://:memory: \
		$(BIN)/pytest -m "not browser" $(REDIS_TESTS) $(PYTEST_ARGS)

# The tests of everything that touches photo files once more, each test's photo store a bucket of its own on a
# local S3 (moto in server mode on 127.0.0.1, TEST_MEDIA=s3; conftest.py): uploads, renditions, serving, the ZIP,
# share downloads and their cleaning, purge, generation retrieval and previews, board imports, the checks.
S3_TESTS := photos/tests/test_photo_create.py photos/tests/test_upload_validation.py photos/tests/test_api.py \
	photos/tests/test_trash.py photos/tests/test_bulk.py photos/tests/test_duplicates.py photos/tests/test_admin.py \
	photos/tests/test_details.py photos/tests/test_taken.py photos/tests/test_pages.py \
	generation/tests/test_flow.py generation/tests/test_services.py generation/tests/test_retrieval_limits.py \
	generation/tests/test_events.py generation/tests/test_controls.py albums/tests/test_share_security.py \
	albums/tests/test_boards.py gallery_project/tests/test_checks_and_schedules.py
test-s3: $(VENV)/.installed-dev
	TEST_MEDIA=s3 DATABASE_URL=sqlite://:memory: $(BIN)/pytest $(S3_TESTS) $(PYTEST_ARGS)

test: lint check-migrations test-sqlite test-postgres test-s3

bench: $(VENV)/.installed-dev
	$(PIP) install -e '.[bench]'
	$(BIN)/python bench/thumbnails.py
	$(BIN)/python bench/gallery_list.py --database sqlite
	$(BIN)/python bench/gallery_list.py --database postgres
	$(BIN)/python bench/upload_memory.py
	$(BIN)/python bench/serving.py
	$(BIN)/python bench/generation.py $$(if [ -n "$$INVOKEAI_BENCH_URL" ]; then echo "--url $$INVOKEAI_BENCH_URL"; else echo --skip-real; fi)
	$(BIN)/python bench/live.py $$(if [ -n "$$INVOKEAI_BENCH_URL" ]; then echo "--url $$INVOKEAI_BENCH_URL"; else echo --skip-real; fi)

clean:
	rm -rf $(VENV) *.egg-info
