# Two commands do all the set-up on a fresh machine (see README.md):
#   make quickstart   create .venv, install, run the main job on the embedded sample corpus
#   make test         create .venv, install, run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
.PHONY: setup quickstart test screenshot

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, pinned to the CPU build: an unpinned torch would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,onnx,bench,serve,tune,scale]"
	touch $@

setup: $(VENV)/.installed

# The main job on the embedded default: the sample corpus and the tiny model.
quickstart: setup
	$(BIN)/kayan data stats sample:train
	$(BIN)/kayan train configs/quickstart.yaml --overwrite
	$(BIN)/kayan evaluate train/quickstart --data sample:test --out train/quickstart/evaluation --html
	$(BIN)/kayan package train/quickstart models/quickstart --overwrite
	$(BIN)/kayan predict models/quickstart kayan/data/sample/news.txt --format text
	$(BIN)/kayan predict models/quickstart kayan/data/sample/news.txt

# The suite makes its own cold home and caches and finds ../shared itself (tests/conftest.py): a bare
# `pytest` in the venv runs exactly the same way.
test: setup
	$(BIN)/python -m pytest

# The quickstart's report.html in headless Chromium (apt-get installs chromium when missing) → docs/report.png.
screenshot: setup
	test -f train/quickstart/evaluation/report.html || $(MAKE) quickstart
	$(BIN)/python scripts/screenshot_report.py train/quickstart/evaluation/report.html docs/report.png --height 1100 --small
