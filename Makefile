# Repair Inbox. `make run` serves the app on http://127.0.0.1:5000 with a demo shop;
# `make test` installs what the tests need and runs them on SQLite and on PostgreSQL.
PY ?= python3
VENV = .venv
BIN = $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: venv install dev-install translations translations-update migrate seed run system-packages test screenshots clean

venv: $(BIN)/python

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The stamps make pip run again only when a requirements file changes.
install: $(VENV)/.requirements.stamp

$(VENV)/.requirements.stamp: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

dev-install: $(VENV)/.requirements-dev.stamp

$(VENV)/.requirements-dev.stamp: requirements-dev.txt requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

translations: install
	@if [ -n "$$(find app/translations -name '*.po' 2>/dev/null)" ]; then \
		$(BIN)/pybabel -q compile -d app/translations; \
	fi

# After adding or changing UI text: refresh the template and the Polish catalogue, then translate what is new.
translations-update: install
	$(BIN)/pybabel -q extract -F babel.cfg -k _l -k lazy_pgettext:1c,2 --project "Repair Inbox" -o app/translations/messages.pot .
	$(BIN)/pybabel -q update --ignore-obsolete -i app/translations/messages.pot -d app/translations

migrate: install
	$(BIN)/flask --app wsgi db upgrade

seed: migrate
	$(BIN)/flask --app wsgi demo seed

run: install translations migrate seed
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

system-packages:
	@PY=$(PY) scripts/install-system-packages.sh

# Both runs happen even when the first fails; the exit code is the first failing run's.
test: system-packages dev-install translations
	@echo "=== tests on SQLite ==="; \
	TEST_DATABASE=sqlite $(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS); sqlite=$$?; \
	echo "=== tests on PostgreSQL ==="; \
	TEST_DATABASE=postgresql $(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS); postgresql=$$?; \
	echo "=== SQLite: exit $$sqlite, PostgreSQL: exit $$postgresql ==="; \
	if [ $$sqlite -ne 0 ]; then exit $$sqlite; fi; exit $$postgresql

# The README's pictures: a tour of the demo shop in headless Chromium.
screenshots: system-packages dev-install translations
	SCREENSHOTS_DIR=docs/screens TEST_DATABASE=sqlite $(BIN)/python -m pytest -p no:cacheprovider -q tests/test_browser_tour.py tests/test_browser_mailbox_oauth.py

clean:
	rm -rf $(VENV) test-results .pytest_cache
	find . -path ./instance -prune -o \( -name __pycache__ -o -name '*.mo' \) -prune -exec rm -rf {} +
