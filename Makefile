# Two commands on a fresh machine with Python 3.11 and make:
#   make demo   set up, prepare the default corpus, and run everything end to end
#   make test   set up and run the tests (pinned stack, then the newest TF/Keras)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
LATEST_VENV := .venv-latest
LATEST_PY := $(LATEST_VENV)/bin/python
DATA_DIR ?= $(CURDIR)/data
DEMO_DIR ?= $(CURDIR)/runs/demo
PYTEST_ARGS ?=
# pytest-xdist workers for `make test` (0: one process). --dist loadfile keeps each test file
# in one worker, so a module's fixtures (tests/test_distribute.py's MirroredStrategy run,
# the exports of tests/test_export.py) are built once, not once per worker.
TEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist loadfile
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test test-pinned test-latest setup clean web web-deps

setup: $(VENV)/.installed

# The pinned, known-good stack (constraints.txt; README: why pinned).
$(VENV)/.installed: setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

# The newest TensorFlow/Keras/TFDS, without tensorflow-io (which only loads with TF 2.16).
$(LATEST_VENV)/.installed: setup.py Makefile
	$(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_PY) -m pip install --quiet --upgrade tensorflow keras tensorflow-datasets \
	    importlib_resources mido absl-py tensorboard numpy ai-edge-litert matplotlib music21 \
	    pytest pytest-xdist hypothesis dill pretty_midi
	$(LATEST_PY) -m pip install --quiet --no-deps -e .
	touch $@

# Everything end to end on the default corpus: prepare it, train a small model briefly,
# export it, generate MIDI with the stand-alone consumers, evaluate against real music.
demo: $(VENV)/.installed
	# First, seconds and no training: songs from the shipped generators (pretrained/).
	$(PY) generate.py --export=pretrained/gan --num_songs=2 --steps=200 --seed=0 \
	    --output_dir=$(DEMO_DIR)/pretrained_gan
	$(PY) generate.py --export=pretrained/gan3 --num_songs=2 --steps=200 --seed=0 \
	    --output_dir=$(DEMO_DIR)/pretrained_gan3
	# Then the whole pipeline, end to end, briefly trained.
	$(PY) -m tfds_midi --config=default --data_dir=$(DATA_DIR)
	$(PY) train.py --preset=small --epochs=3 --pretrain_epochs=2 --windows_per_song=1 \
	    --data_dir=$(DATA_DIR) --model_dir=$(DEMO_DIR)/run
	$(PY) -m export --model_dir=$(DEMO_DIR)/run --output=$(DEMO_DIR)/export
	$(PY) export/generate_savedmodel.py --model $(DEMO_DIR)/export/saved_model \
	    --output $(DEMO_DIR)/savedmodel_sample.mid --seed 0 --steps 200
	$(PY) export/generate_tflite.py --model $(DEMO_DIR)/export/generator.tflite \
	    --output $(DEMO_DIR)/tflite_sample.mid --seed 0 --steps 200
	$(PY) generate.py --model_dir=$(DEMO_DIR)/run --primer_from=crnn_gan_midi/default:test --data_dir=$(DATA_DIR) --output_dir=$(DEMO_DIR)/generated
	$(PY) evaluate.py --model_dir=$(DEMO_DIR)/run --saved_model=$(DEMO_DIR)/export \
	    --real=crnn_gan_midi/default:validation --data_dir=$(DATA_DIR) \
	    --output_dir=$(DEMO_DIR)/evaluation --pianoroll
	@echo "Demo done: MIDI in $(DEMO_DIR), figure in $(DEMO_DIR)/evaluation/figure3.png"

test: test-pinned test-latest

test-pinned: $(VENV)/.installed web-deps
	$(PY) -m pytest tests $(PYTEST_PARALLEL) $(PYTEST_ARGS)

# A fast subset on the newest stack: everything but the tests marked `pinned_stack`
# (tensorflow-io file systems) and `slow`.
test-latest: $(LATEST_VENV)/.installed
	$(LATEST_PY) -m pytest tests -m "not pinned_stack and not slow" $(PYTEST_PARALLEL) $(PYTEST_ARGS)

# The page that generates and plays music in the browser (README: In the browser: web/):
# its JavaScript from the npm registry (web/package-lock.json), the default model
# (pretrained/gan/, else runs/demo/export/, else an untrained demo export), served on
# http://127.0.0.1:$(WEB_PORT)/.
WEB_PORT ?= 8000
web: $(VENV)/.installed web-deps
	$(PY) web/serve.py --port=$(WEB_PORT)

# npm ci when the lock file changed. Without npm (or offline) the browser tests skip, except
# under CI, where they fail.
web-deps: web/node_modules/.package-lock.json
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	    cd web && npm ci --no-audit --no-fund --loglevel=error \
	    || echo "npm ci failed: tests/test_web.py will skip (and fail under CI)"; \
	else echo "npm not found: tests/test_web.py will skip (and fail under CI)"; fi

clean:
	rm -rf $(VENV) $(LATEST_VENV) runs web/node_modules web/models
