"""What a run's numbers depend on besides its parameters: the software and the processor.

The same parameters and the same numerics give the same record, bit for bit. Other numerics
give slightly different float sums, and after 25 epochs of SGD slightly different networks and
error counts: docs/numerics.md measures how much, between three kinds of x86-64 hosts, and why
pinning the instruction set does not make them agree. Every record keeps its numerics, so a
reader (and the test suite) knows whether a record can be reproduced exactly on a machine.
"""

import os
import platform
from pathlib import Path

# Settings, read when torch and its libraries load, that change which kernels run: a run made
# with one of them set records it.
PIN_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_CBWR",
                 "MKL_ENABLE_INSTRUCTIONS")
# The instruction-set extensions that decide which oneDNN and MKL kernels a CPU gets.
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile")


def _cpuinfo():
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_model():
    """The processor, as precisely as the OS says: vendor, family, model and its name."""
    info = _cpuinfo()
    if "vendor_id" in info:
        return (f"{info['vendor_id']} family {info.get('cpu family', '?')} model "
                f"{info.get('model', '?')} ({info.get('model name', '')})")
    return platform.processor() or platform.machine()


def _caches():
    """Data cache sizes per level (oneDNN sizes its blocks by them), from sysfs on Linux."""
    sizes = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            kind = (index / "type").read_text().strip()
            if kind != "Instruction":
                sizes[f"L{(index / 'level').read_text().strip()}"] = \
                    (index / "size").read_text().strip()
        except OSError:
            pass
    return sizes


def describe(device, threads):
    """The numerics of a run on `device` (a torch.device) with `threads` CPU threads."""
    import torch
    import torchvision

    flags = set(_cpuinfo().get("flags", "").split())
    gpu = device.type == "cuda"
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "device": device.type,
        "gpu": torch.cuda.get_device_name(device) if gpu else None,
        "cudnn": torch.backends.cudnn.version() if gpu else None,
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_flags": [flag for flag in ISA_FLAGS if flag in flags],
        "caches": _caches(),
        "capability": torch.backends.cpu.get_cpu_capability(),
        "threads": threads,
        "pinned": {name: os.environ[name] for name in PIN_VARIABLES if name in os.environ},
    }


def label(numerics):
    """One line naming `numerics`, for tables: software, processor, instruction set, threads."""
    where = (f"GPU {numerics['gpu']}" if numerics["device"] == "cuda" else
             f"{numerics['machine']} {numerics['cpu']}, {numerics['capability']}")
    pinned = "".join(f", {name}={value}" for name, value in numerics["pinned"].items())
    return (f"torch {numerics['torch']} on {where}, {numerics['threads']} "
            f"thread{'s' * (numerics['threads'] != 1)}{pinned}")
