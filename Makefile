# Quick start: `make demo` (main job on an embedded local Ray, real data) and `make test`.
# Both create .venv and install the pinned dependencies (constraints.txt) on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	$(PY) -c "import pecanpy, pyarrow, ray.serve, ray.train.torch, torch, zsrec_ray; print('imports ok: torch', torch.__version__)"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) jobs/pipeline.py --config configs/pipeline.yaml --output runs/quickstart/pipeline.json

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
