"""The analysis file ``RUN.analysis.h5``, a sibling of the run file ``RUN.h5``.

Written atomically (temporary sibling + rename, :mod:`bioplastic.io.atomic`)
so a crash never leaves half a file; the run file itself is never modified.
Layout (schema ``bioplastic.analysis``, version :data:`SCHEMA_VERSION`)::

    /                         attrs: schema, schema_version, package_version, created,
                                     run_file, seed, settings, config, abrupt, lead, slow (JSON)
    /loss/{iterations, loss}
    /fixed_points/<k>/        states (K, D), q (K,), eig_real, eig_imag (K, D), is_fixed (K,)
                              attrs: scale, eps, info (JSON)
    /gr/                      iterations, n_fixed, n_stable, distance, matched_shift, is_event
                              attrs: threshold, settings, reasons (JSON)
    /slow/                    initial_timescales, final_timescales, initial_ramping, final_ramping
    /pca/                     mean, components, explained
    /portraits/<k>            projected trajectories (T+1, B, 2)
    /speed_maps/<k>/          a, b, speed

``<k>`` is the checkpoint iteration, zero-padded to 8 digits.
"""
from __future__ import annotations

import datetime
import json
from pathlib import Path

import h5py
import numpy as np

from .._version import __version__
from ..io.atomic import atomic_path
from ..io.hdf5 import open_checked
from .abrupt import AbruptLearning
from .fixed_points import FixedPoints
from .geometry import GREvents

SCHEMA = "bioplastic.analysis"
SCHEMA_VERSION = 1
_ARRAYS_SLOW = ("initial_timescales", "final_timescales", "initial_ramping", "final_ramping",
                "initial_ramping_traces", "final_ramping_traces")


def analysis_path(run_file) -> Path:
    """``dir/RUN.h5`` -> ``dir/RUN.analysis.h5``."""
    p = Path(run_file)
    return p.with_name(f"{p.stem}.analysis.h5")


def _json(obj) -> str:
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"cannot store {type(o).__name__} as JSON")

    return json.dumps(obj, default=default, allow_nan=True)


def write_analysis(analysis, path=None) -> Path:
    """Write a :class:`~bioplastic.analysis.run_analysis.RunAnalysis` atomically; returns the path.

    Default path: :func:`analysis_path` of the analysed run file.
    """
    path = analysis_path(analysis.run_file) if path is None else Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["schema"] = SCHEMA
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["package_version"] = __version__
            f.attrs["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
            f.attrs["run_file"] = str(analysis.run_file)
            f.attrs["seed"] = int(analysis.seed)
            f.attrs["settings"] = _json(analysis.settings)
            f.attrs["config"] = _json(analysis.config)
            f.attrs["abrupt"] = _json(analysis.abrupt.as_dict())
            f.attrs["lead"] = _json(analysis.lead)
            f.attrs["slow"] = _json({k: v for k, v in analysis.slow.items() if k not in _ARRAYS_SLOW})
            lg = f.create_group("loss")
            lg["iterations"] = analysis.loss["iterations"]
            lg["loss"] = analysis.loss["loss"]
            fg = f.create_group("fixed_points")
            for k, fp in sorted(analysis.fixed_points.items()):
                g = fg.create_group(f"{int(k):08d}")
                g["states"] = fp.states
                g["q"] = fp.q
                g["eig_real"] = fp.eigenvalues.real
                g["eig_imag"] = fp.eigenvalues.imag
                g["is_fixed"] = fp.is_fixed
                g.attrs["scale"] = float(analysis.scales[k])
                g.attrs["eps"] = fp.eps
                g.attrs["info"] = _json(fp.info)
            gg = f.create_group("gr")
            gr = analysis.gr
            for name in ("iterations", "n_fixed", "n_stable", "distance", "matched_shift", "is_event"):
                gg[name] = getattr(gr, name)
            gg.attrs["threshold"] = gr.threshold
            gg.attrs["settings"] = _json(gr.settings)
            gg.attrs["reasons"] = _json(gr.reasons)
            sg = f.create_group("slow")
            for name in _ARRAYS_SLOW:
                if name in analysis.slow:
                    sg[name] = analysis.slow[name]
            pg = f.create_group("pca")
            for name, arr in analysis.pca.items():
                pg[name] = arr
            tg = f.create_group("portraits")
            for k, arr in analysis.portraits.items():
                tg[f"{int(k):08d}"] = arr
            mg = f.create_group("speed_maps")
            for k, sm in analysis.speed_maps.items():
                g = mg.create_group(f"{int(k):08d}")
                for name, arr in sm.items():
                    g[name] = arr
    return path


def read_analysis(path):
    """Read an analysis file back into a RunAnalysis (schema-checked).

    Raises
    ------
    SchemaError
        If the file is missing, not HDF5, not an analysis file, or of
        another schema version.
    """
    from .run_analysis import RunAnalysis

    path = Path(path)
    with open_checked(path, SCHEMA, SCHEMA_VERSION, "analysis file",
                      hint=" (run `bioplastic analyze` first)") as f:
        fps, scales = {}, {}
        for key, g in f["fixed_points"].items():
            k = int(key)
            eig = g["eig_real"][()] + 1j * g["eig_imag"][()]
            fps[k] = FixedPoints(g["states"][()], g["q"][()], eig, g["is_fixed"][()].astype(bool),
                                 float(g.attrs["eps"]), json.loads(g.attrs["info"]))
            scales[k] = float(g.attrs["scale"])
        gg = f["gr"]
        gr = GREvents(gg["iterations"][()], gg["n_fixed"][()], gg["n_stable"][()], gg["distance"][()],
                      gg["matched_shift"][()], gg["is_event"][()].astype(bool), json.loads(gg.attrs["reasons"]),
                      float(gg.attrs["threshold"]), json.loads(gg.attrs["settings"]))
        ab = json.loads(f.attrs["abrupt"])
        abrupt = AbruptLearning(**{k: ab[k] for k in ("detected", "reason", "plateau_start", "plateau_end",
                                                       "drop_iteration", "drop_end", "drop_size", "plateau_slope",
                                                       "drop_slope", "knots", "slopes")})
        slow = json.loads(f.attrs["slow"])
        for name in _ARRAYS_SLOW:
            if name in f["slow"]:  # the ramping traces came in 2026-12-07
                slow[name] = f["slow"][name][()]
        pca = {k: v[()] for k, v in f["pca"].items()}
        portraits = {int(k): v[()] for k, v in f["portraits"].items()}
        speed_maps = {int(k): {n: d[()] for n, d in g.items()} for k, g in f["speed_maps"].items()}
        loss = {"iterations": f["loss"]["iterations"][()], "loss": f["loss"]["loss"][()]}
        return RunAnalysis(str(f.attrs["run_file"]), json.loads(f.attrs["config"]), int(f.attrs["seed"]), fps,
                           scales, gr, abrupt, json.loads(f.attrs["lead"]), loss, slow, pca, portraits, speed_maps,
                           json.loads(f.attrs["settings"]))
