# The two commands a new machine needs: `make run` and `make test`. Both set up first (idempotent).
PY := .venv/bin/python
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test test-fast setup setup-test bench eval fuzz demo screenshot clean

run: setup
	$(PY) -m studio.launcher $(if $(DISPLAY),studio,demo)

test: setup-test
	$(PY) -m pytest -q

# Everything but the tests marked slow (training, fuzzing: 20 s or more each on 2 cores).
test-fast: setup-test
	$(PY) -m pytest -q -m 'not slow'

setup:
	@scripts/setup.sh run

setup-test:
	@scripts/setup.sh test

bench: setup-test
	$(PY) -m studio.launcher bench all

eval: setup-test
	$(PY) -m studio.launcher eval all

# Headless demo (what `make run` does without a display) and the README's screenshot (Xvfb).
demo: setup
	$(PY) -m studio.launcher demo

screenshot: setup-test
	$(PY) scripts/screenshot.py

fuzz: setup-test
	$(PY) scripts/fuzz.py --files 10000 --results

clean:
	rm -rf out .pytest_cache
