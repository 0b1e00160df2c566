# VIVECaption Studio — the two commands a newcomer needs:
#   make demo   set up, migrate, seed, start web + workers, print where to look
#   make test   install the test tools and run lint, the import contract and the test suite
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export DJANGO_SETTINGS_MODULE ?= vivecaption_site.settings.dev
DEMO_SECONDS ?= 1200

.PHONY: demo test screenshots venv venv-ml venv-dev venv-ls chromium lint stop status migrate clean-var

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

# Label Studio lives in its own virtualenv: its pins (Django, DRF, redis…) clash with ours.
LS_VENV ?= .venv-ls
$(LS_VENV)/.installed: requirements-labelstudio.txt
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install -q --upgrade pip
	$(LS_VENV)/bin/python -m pip install -q -r requirements-labelstudio.txt
	touch $@

venv: $(VENV)/.installed
venv-ml: $(VENV)/.installed-ml
venv-dev: $(VENV)/.installed-dev
venv-ls: $(LS_VENV)/.installed

migrate: venv
	$(PY) manage.py migrate --noinput

demo: venv-ml venv-ls migrate
	$(PY) manage.py seed_demo
	# Every step below is done once: run again, each finds its earlier result (the same settings on the
	# same inputs; --reuse) and shows it, so a second `make demo` adds nothing twice.
	# a 20-minute film (one shot a second): a gold set of ~190 frames, so its 20% test split has >= 30
	$(PY) manage.py demo_world --seconds $(DEMO_SECONDS)
	# the demo's own models, trained here on another stretch of the world (another seed); cached
	# under var/models/demo/, so a second run only registers them
	$(PY) manage.py demo_models "Demo world"
	$(PY) manage.py embed "Demo world"
	# ~7 frames a cluster, as in the paper (2,161 frames → 310 clusters)
	$(PY) manage.py cluster "Demo world" --min-cluster-size 2 --n-neighbors 5 --reuse
	$(PY) manage.py sample_gold "Demo world" --reuse
	# in-context detection over the gold set (the untrained detector base), then captions for a few frames
	$(PY) manage.py detect "Demo world" --reuse
	$(PY) manage.py caption "Demo world" --limit 4 --reuse
	# Label Studio (own virtualenv, 127.0.0.1:8080), web and workers: webhooks reach the app from here on
	bin/demo start
	# the gold set in Label Studio, pre-filled by the detection run; a 10% control slice without
	$(PY) manage.py label_gold "Demo world" --freeze
	# two simulated annotators answer through Label Studio's API (with some mistakes and overlap),
	# leaving 3 frames for you; then a full reconciliation
	$(PY) manage.py simulate_annotators "Demo world" --annotator annotator --annotator annotator2 \
		--passwords var/demo-credentials.json --overlap 0.3 --mistake-rate 0.1 --leave 3
	$(PY) manage.py sync_labels "Demo world"
	# LoRA fine-tuning of the detector base on those gold labels (80/20 split): before/after table
	$(PY) manage.py train_detector "Demo world" --reuse
	# the three pipelines (no detection / base / fine-tuned detector → captioner) on 100 frames outside
	# the gold set, CLIPScore, a judge (any model version; here the tiny Qwen), paired tests, the report
	$(PY) manage.py evaluate "Demo world" --size 100 --judge tiny-qwen2.5-vl --reuse
	# the reviewers' workspace over that evaluation: base vs fine-tuned captions, blind
	$(PY) manage.py review "Demo world" --reuse
	# the captioned dataset for a trainer: the best caption of every frame, reviewers' corrections applied,
	# as a Hugging Face imagefolder (other formats: --format jsonl|dense|kohya|webdataset)
	$(PY) manage.py export "Demo world" --format hf --best --reuse
	bin/demo urls

stop:
	bin/demo stop

status:
	bin/demo status

lint: venv-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	DJANGO_SETTINGS_MODULE=vivecaption_site.settings.test $(PY) manage.py spectacular --fail-on-warn --file /dev/null

# The browser tests (tests/e2e) drive Debian's chromium through Playwright; installed here when missing.
CHROMIUM ?= /usr/bin/chromium
chromium:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian's chromium for the browser tests (tests/e2e)…"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "The browser tests (tests/e2e) need chromium at $(CHROMIUM): install it (sudo apt-get install -y chromium) or set CHROMIUM=/path/to/chromium." >&2; \
	    exit 1; \
	  fi; \
	fi
	@test -x "$(CHROMIUM)" || { echo "chromium was not installed at $(CHROMIUM)" >&2; exit 1; }

# The README's screenshots, as the browser journeys take them (tests/e2e/: lead, annotator, reviewer).
SHOTS := test-output/e2e
screenshots: venv-dev venv-ls chromium
	rm -rf $(SHOTS)
	DJANGO_SETTINGS_MODULE=vivecaption_site.settings.test CHROMIUM=$(CHROMIUM) $(VENV)/bin/pytest -q tests/e2e -k "test_the_"
	mkdir -p docs/screenshots
	cp $(SHOTS)/lead-*-pipeline.png docs/screenshots/pipeline.png
	cp $(SHOTS)/lead-*-training.png docs/screenshots/training.png
	cp $(SHOTS)/lead-*-report.png docs/screenshots/report.png
	cp $(SHOTS)/annotator-*-label-studio.png docs/screenshots/label-studio.png
	cp $(SHOTS)/reviewer-*-review.png docs/screenshots/review.png

test: venv-dev venv-ls chromium lint
	DJANGO_SETTINGS_MODULE=vivecaption_site.settings.test CHROMIUM=$(CHROMIUM) $(VENV)/bin/pytest $(PYTEST_ARGS)
