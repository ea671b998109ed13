"""Old import names of the simulate stage, kept for callers outside hpc_rg.mc (learn/tune.py, tests of the
CLI, MPI and MPI-IO). The stage is `hpc_rg.mc.stage.run`; the event loop `hpc_rg.mc.simulation`."""
from hpc_rg.mc.run_control import EXIT_INTERRUPTED, StopFlag, slurm_deadline
from hpc_rg.mc.stage import run as run_simulate

__all__ = ["EXIT_INTERRUPTED", "StopFlag", "run_simulate", "slurm_deadline"]
