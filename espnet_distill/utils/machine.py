"""What machine a measurement was made on, for benchmark reports.

Speed-ups of int8 inference depend on the CPU's int8 instructions (VNNI, AMX):
a report that gives an RTF says which CPU it came from.
"""

import os
import platform
from pathlib import Path
from typing import Dict, List

# The instruction sets that change the speed of fp32 and int8 inference most.
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


def _cpuinfo() -> Dict[str, str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    info: Dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the first processor is enough
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    return info


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else what ``platform`` says)."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine() or "unknown"


def cpu_speed_flags() -> List[str]:
    """Which of :data:`SPEED_FLAGS` the CPU has (empty where ``/proc/cpuinfo`` is not readable)."""
    flags = set(_cpuinfo().get("flags", "").split())
    return [flag for flag in SPEED_FLAGS if flag in flags]


def machine_description() -> Dict[str, object]:
    """The facts a timing depends on: CPU model, its vector and int8 instructions, cores."""
    return {"cpu": cpu_model(), "cpu_flags": cpu_speed_flags(), "cores": os.cpu_count()}


def machine_line(machine: Dict[str, object]) -> str:
    """One line for a report: ``AMD EPYC (avx2, avx512f, avx512_vnni), 2 cores``."""
    flags = ", ".join(machine.get("cpu_flags") or []) or "no AVX2"
    return f"{machine.get('cpu')} ({flags}), {machine.get('cores')} cores"
