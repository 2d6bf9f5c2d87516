# Two commands: `make course` opens the course, `make test` runs every test and notebook.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: course test install server-stop reset constraints clean

course: $(STAMP)  ## start the Prefect server and open JupyterLab on notebooks/
	$(BIN)/python -m lessons_src course

test: $(STAMP)  ## lint, unit tests and nbval over every notebook; stops what it started
	$(BIN)/python -m lessons_src test

install: $(STAMP)

# Reinstall only when the pins or the package metadata change.
$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	touch $(STAMP)

server-stop:  ## stop the course's Prefect server and demo API
	$(BIN)/python -m lessons_src demo-api stop
	$(BIN)/python -m lessons_src server stop

reset: $(STAMP)  ## wipe the course database (flows, runs, limits, variables)
	$(BIN)/python -m lessons_src server reset

constraints: $(STAMP)  ## re-freeze constraints.txt from the installed set
	{ echo "# Every package of the tested set, frozen from a fresh install of requirements.txt on Python 3.11."; \
	  echo "# Regenerate with: make constraints"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^lessons'; } > constraints.txt

clean: server-stop  ## remove the virtual environment and the course state
	rm -rf $(VENV) .course
