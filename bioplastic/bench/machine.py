"""What machine a benchmark ran on, and how busy it was."""
from __future__ import annotations

import os
import platform
import time

import numpy as np

from .torch_peer import import_torch

def machine_info() -> dict:
    """CPU count and library versions of this process."""
    import numba

    info = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "torch": None,
        "torch_threads": None,
    }
    if hasattr(os, "sched_getaffinity"):
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    busy = _cpu_busy()
    if busy is not None:
        info["cpu_busy"] = round(busy, 2)
    torch = import_torch()
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


def cpu_snapshot():
    """(total, idle) CPU seconds of the whole machine and this process's CPU seconds.

    Linux only (``/proc/stat``); returns None elsewhere. Two snapshots give
    the share of the machine that *other* processes used in between, see
    :func:`other_load`.
    """
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        tick = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    t = os.times()
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) / tick, idle / tick, t.user + t.system


def other_load(before, after):
    """Fraction of all CPUs used by other processes between two snapshots."""
    if before is None or after is None:
        return None
    total, idle, own = (b - a for a, b in zip(before, after))
    if total <= 0:
        return None
    return min(max((total - idle - own) / total, 0.0), 1.0)


def _cpu_busy(interval=0.5):
    """Fraction of all CPUs busy (by others) during ``interval`` s, or None."""
    before = cpu_snapshot()
    time.sleep(interval)
    return other_load(before, cpu_snapshot())


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def format_header(info: dict) -> str:
    torch = "not installed" if info["torch"] is None else f"{info['torch']} ({info['torch_threads']} threads)"
    cpus = f"{info['cpu_count']}"
    if "cpus_usable" in info:
        cpus += f" ({info['cpus_usable']} usable)"
    lines = [
        f"bioplastic bench, {info['date']}",
        f"machine: {info['processor']}, {cpus} CPUs, {info['platform']}",
        f"python {info['python']}, numpy {info['numpy']}, numba {info['numba']}, torch {torch}",
    ]
    busy = info.get("cpu_busy")
    if busy is not None:
        lines.append(f"CPU used by other processes just before the run: {100 * busy:.0f}%")
        if busy > 0.1:
            lines.append("WARNING: the machine is busy; multi-threaded torch (and BLAS) timings "
                         "suffer badly from oversubscription, re-run on an idle machine")
    return "\n".join(lines)
