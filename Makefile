# VIVECaption Studio — the two commands a newcomer needs:
#   make demo   set up, migrate, seed, start web + workers, print where to look
#   make test   install the test tools and run lint, the import contract and the test suite
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export DJANGO_SETTINGS_MODULE ?= vivecaption_site.settings.dev

.PHONY: demo test venv venv-ml venv-dev lint stop status migrate clean-var

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	touch $@

$(VENV)/.installed-ml: requirements-ml.txt $(VENV)/.installed
	$(PIP) install -q -r requirements-ml.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed-ml
	$(PIP) install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed
venv-ml: $(VENV)/.installed-ml
venv-dev: $(VENV)/.installed-dev

migrate: venv
	$(PY) manage.py migrate --noinput

demo: venv-ml migrate
	$(PY) manage.py seed_demo
	$(PY) manage.py demo_world
	$(PY) manage.py embed "Demo world"
	# ~7 frames a cluster, as in the paper (2,161 frames → 310 clusters)
	$(PY) manage.py cluster "Demo world" --min-cluster-size 2 --n-neighbors 5
	$(PY) manage.py sample_gold "Demo world"
	# in-context detection over the gold set, then captions for a few frames (tiny: untrained models)
	$(PY) manage.py detect "Demo world"
	$(PY) manage.py caption "Demo world" --limit 4
	bin/demo start

stop:
	bin/demo stop

status:
	bin/demo status

lint: venv-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	DJANGO_SETTINGS_MODULE=vivecaption_site.settings.test $(PY) manage.py spectacular --fail-on-warn --file /dev/null

test: venv-dev lint
	DJANGO_SETTINGS_MODULE=vivecaption_site.settings.test $(VENV)/bin/pytest $(PYTEST_ARGS)
