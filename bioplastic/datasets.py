"""Example datasets shipped in ``data/`` (see data/README.md)."""
from __future__ import annotations

import h5py
import numpy as np

from .errors import SchemaError
from .io.specs import resolve


def load_example(name="flipflop_population") -> dict:
    """Load a shipped example dataset as a dict of arrays plus ``attrs``.

    ``flipflop_population`` (synthetic): ``rates_hz`` (T, trials, neurons),
    ``inputs``, ``targets`` (T, trials, 3) and ``trial_table``.
    """
    path = resolve(name, "data", (".h5",))
    with h5py.File(path, "r") as f:
        missing = [k for k in ("rates_hz", "inputs") if k not in f]
        if missing:
            raise SchemaError(f"{path} lacks {missing}; not a bioplastic example dataset")
        out = {k: f[k][()] for k in ("rates_hz", "inputs", "targets") if k in f}
        out["trial_table"] = {k: v[()] for k, v in f.get("trial_table", {}).items()}
        out["attrs"] = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
        out["path"] = str(path)
    return out
