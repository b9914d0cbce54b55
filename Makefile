# Two commands for a newcomer: `make report` and `make test` (and `make extended` for every
# row measured on the test pairs). All create .venv first if needed. Each row runs its own
# seeds (the catalogue's); the records already there are skipped.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
WORKERS ?= 2

.PHONY: report extended notebooks test test-fast venv list clean-venv

venv: $(VENV)/.installed

# Reinstalls only when the pinned requirements or the package metadata change.
$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $@

# The report's eight configurations (Tables III and IV), then the summary.
report: venv
	$(PY) -m helpers run report --workers $(WORKERS)
	$(PY) -m helpers summary

# Every row measured on the test pairs (the eight, the first rebuild's, the alpha sweep, `best`,
# `same-budget`, the held-out seeds), then the summary.
extended: venv
	$(PY) -m helpers run all --workers $(WORKERS)
	$(PY) -m helpers summary

# The architecture notebooks executed in place with their defaults (after a change to the code
# they show or run): their outputs are what nbval compares.
notebooks: venv
	$(PY) -m helpers notebooks

# nbval re-executes every committed notebook (kernels start in notebooks/, so MNIST_ROOT is
# made absolute) and compares its outputs with the committed ones; no progress bars there.
# One pytest worker per core (pytest-xdist), each taking whole files: a notebook's cells run
# in order in one kernel. Almost every test waits on one single-threaded process (a training,
# a kernel, a runner), so a worker per core shortens the wall time (docs/speed.md).
test: venv
	HELPERS_PROGRESS=0 MNIST_ROOT="$(abspath $(MNIST_ROOT))" $(PY) -m pytest tests notebooks --nbval \
		--nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg -n auto --dist loadfile

# The fast tier: no training, no kernel, no notebook execution (tests marked slow are left out).
test-fast: venv
	HELPERS_PROGRESS=0 MNIST_ROOT="$(abspath $(MNIST_ROOT))" $(PY) -m pytest tests -m "not slow" \
		-n auto

list: venv
	$(PY) -m helpers list

clean-venv:
	rm -rf $(VENV)
