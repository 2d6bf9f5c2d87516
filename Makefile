# Two commands: `make course` opens the course, `make test` runs every test and notebook.
# Both call course.py, which needs only Python (`python course.py` / `python course.py test` where make is missing):
# it creates .venv with a supported Python (3.11-3.14) and installs the pinned set when the pins change.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: course test site install server-stop reset constraints clean

course:  ## start the Prefect server and open JupyterLab on notebooks/
	$(PYTHON) course.py course

test:  ## lint, unit tests and nbval over every notebook; stops what it started
	$(PYTHON) course.py test

site:  ## execute every notebook against the course server and build the website into _site/
	$(PYTHON) course.py site

install:
	$(PYTHON) course.py install

server-stop:  ## stop the course's Prefect server and demo API
	$(PYTHON) course.py demo-api stop
	$(PYTHON) course.py server stop

reset:  ## wipe the course database (flows, runs, limits, variables)
	$(PYTHON) course.py server reset

constraints: install  ## re-freeze constraints.txt from the installed set
	{ echo "# Every package of the tested set, frozen from a fresh install of requirements.txt on Python 3.11."; \
	  echo "# Regenerate with: make constraints"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^lessons'; } > constraints.txt

clean:  ## remove the virtual environment and the course state
	-test -x $(BIN)/python && $(MAKE) server-stop
	rm -rf $(VENV) .course
