"""The CUDA kernels compile for Hopper (sm_90) through NVVM, without a GPU: catches typing and lowering
errors that the simulator (plain Python) cannot. Skips where numba's CUDA target or NVVM is missing (CI);
runs wherever numba-cuda and the CUDA toolkit wheels (numba-cuda[cu13]) are installed."""
import types

import numpy as np
import pytest

from hpc_rg.mc import gpu_common as gc
from hpc_rg.mc import gpu_metropolis as gm
from hpc_rg.mc import gpu_multispin as gms


def _compiler():
    if gc.simulator_active():
        pytest.skip("the CUDA simulator does not compile")
    try:
        from numba import cuda
        from numba import types as nt
        # a kernel that calls a device function: numba's old built-in target needs a driver even for that
        _ptx(cuda, _probe_src, (nt.uint64[::1],), philox4x32=gc.cuda_device_function(gc.philox4x32_src))
    except Exception as exc:
        # only a missing CUDA target, driver or NVVM library skips; anything else is a real failure
        if isinstance(exc, (ImportError, OSError)) or "SupportError" in type(exc).__name__:
            pytest.skip(f"cannot compile CUDA here: {type(exc).__name__}")
        raise
    return cuda, nt


def _probe_src(out):
    u = np.uint64(1)
    out[0] = philox4x32(u, u, u, u, u, u)[0]


def _ptx(cuda, src, sig, **names):
    g = dict(src.__globals__)
    g.update(names)
    g["cuda"] = cuda
    f = types.FunctionType(src.__code__, g, src.__name__)
    text, _ = cuda.compile_ptx(f, sig, device=False, cc=(9, 0))
    return text


def test_kernels_compile_for_sm90():
    cuda, nt = _compiler()
    u64, i64, b1 = nt.uint64, nt.int64, nt.boolean
    philox = gc.cuda_device_function(gc.philox4x32_src)
    site = gc.cuda_device_function(gm._site_src)
    spins, table, words = nt.int8[:, :, ::1], nt.uint64[:, ::1], nt.uint64[:, ::1]
    counts = nt.int64[:, ::1]
    ptx = {
        "int8_update": _ptx(cuda, gm._update_kernel_src, (spins, table, table, u64, u64, i64, b1),
                            _update=gc.cuda_device_function(gm._update_src, philox4x32=philox, _site=site)),
        "int8_init": _ptx(cuda, gm._init_kernel_src, (spins, table, u64, u64),
                          _init=gc.cuda_device_function(gm._init_src, philox4x32=philox)),
        "int8_measure": _ptx(cuda, gm._measure_kernel_src, (spins, counts),
                             _terms=gc.cuda_device_function(gm._terms_src)),
        "ms_update": _ptx(cuda, gms._update_kernel_src, (words, u64, b1, b1, u64, u64, u64, u64, i64),
                          _update=gc.cuda_device_function(
                              gms._update_src,
                              _bernoulli=gc.cuda_device_function(gms._bernoulli_src, philox4x32=philox))),
        "ms_init": _ptx(cuda, gms._init_kernel_src, (words, u64, u64, u64, u64),
                        _init=gc.cuda_device_function(gms._init_src, philox4x32=philox)),
        "ms_measure": _ptx(cuda, gms._measure_kernel_src, (words, counts),
                           _lane_row=gc.cuda_device_function(gms._lane_row_src)),
    }
    for name, text in ptx.items():
        assert ".target sm_90" in text, name
        assert ".local" not in text, name          # nothing spilled to local memory
        assert "div.s64" not in text and "div.u64" not in text or name == "int8_measure", name
