"""The command line as a user with a plugin module of their own runs it: the module in the run folder,
named in HPC_RG_PLUGINS (or not named, to show what the plain package refuses)."""
import os
import subprocess
import sys


def plugin_env(folder, module: str | None) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")] + sys.path))
    env.pop("HPC_RG_PLUGINS", None)
    if module:
        env["HPC_RG_PLUGINS"] = module
    return env


def hpc_rg(folder, module: str | None, *args, timeout: float = 300) -> subprocess.CompletedProcess:
    """`hpc-rg -q ARGS` in `folder`, with plugin `module` (None: without)."""
    return subprocess.run([sys.executable, "-m", "hpc_rg", "-q", *args], cwd=folder, env=plugin_env(folder, module),
                          capture_output=True, text=True, timeout=timeout)
