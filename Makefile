# Set-up-and-go targets. Each creates .venv when absent and installs what is missing (the package with every
# extra, .[all,test]; TORCH_SPEC first so that the train extra keeps that build), then runs.
#   make demo   the quickstart pipeline under mpiexec -n 2 (simulate, train, analyze, report)
#   make test   the whole test suite: serial, then MPI passes at 2 and 4 ranks (tests/run.sh)
# Overridable: PYTHON (interpreter that makes the venv), TORCH_SPEC (e.g. a CUDA build on a GPU site:
# make TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"), MPI_SPEC (empty
# when mpi4py is built against the site's MPI, see README), NP (ranks for the demo).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
MPI_SPEC ?= mpich
NP ?= 2
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv clean-runs

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC) $(MPI_SPEC)
	$(BIN)/python -m pip install -q -e ".[all,test]"
	touch $(STAMP)

demo: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/mpiexec -n $(NP) $(BIN)/hpc-rg run jobs/quickstart.toml --force

test: $(STAMP)
	bash tests/run.sh

clean-runs:
	rm -rf runs
