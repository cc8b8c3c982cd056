"""Similarity between model activity and recorded activity (SPEC 7).

Both inputs are activity matrices of shape (samples, units) over the same
samples (time points x trials, in the same order); the unit counts may
differ. Each is centred and reduced to its top ``n_components`` principal
components before comparison, so the measures compare population geometry,
not single units.

- :func:`procrustes_distance`: after scaling both PC trajectories to unit
  Frobenius norm, ``d = min_R ||A - B R||_F`` over orthogonal R, which equals
  ``sqrt(2 - 2 ||A^T B||_*)`` (nuclear norm); 0 for identical geometry up to
  rotation, sqrt(2) for orthogonal ones.
- :func:`cca_correlations`: canonical correlations of the two PC sets, the
  singular values of ``Q_A^T Q_B`` with Q orthonormal bases of the centred PCs
  (Raghu et al. 2017, SVCCA).

Model and data rarely share inputs trial for trial. :func:`compare_conditions`
matches them by trial condition instead (a trial-table column such as the
``condition`` label of bioplastic's NWB export, or any columns): both sides
are averaged within condition (condition-averaged PSTHs) and the shared
conditions compared, with a split-half noise ceiling of the data
(:func:`split_half_ceiling`) beside every score.
"""
from __future__ import annotations

import numpy as np

from .errors import ConfigError, ShapeError


def _check_pair(a, b, n_components):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.ndim == 3:
        a = a.reshape(-1, a.shape[-1])
    if b.ndim == 3:
        b = b.reshape(-1, b.shape[-1])
    if a.ndim != 2 or b.ndim != 2:
        raise ShapeError(f"activity must be (samples, units) or (T, B, units); got {a.shape} and {b.shape}")
    if a.shape[0] != b.shape[0]:
        raise ShapeError(f"model and data must have the same samples (time x trials): {a.shape[0]} != {b.shape[0]}")
    for name, x in (("model", a), ("data", b)):
        if not np.all(np.isfinite(x)):
            raise ShapeError(f"{name} activity contains NaN or inf")
    k = int(n_components)
    if k < 1 or k > min(a.shape[1], b.shape[1], a.shape[0] - 1):
        raise ShapeError(f"n_components must be in [1, {min(a.shape[1], b.shape[1], a.shape[0] - 1)}], got {k}")
    return a, b, k


def pca(x, n_components):
    """Centre ``x`` (samples, units) and project on its top principal components.

    Returns (scores (samples, k), explained variance ratio (k,)).
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 2:
        raise ShapeError(f"x must have shape (samples, units), got {x.shape}")
    xc = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    var = s ** 2
    total = var.sum() if var.sum() > 0 else 1.0
    return u[:, :n_components] * s[:n_components], var[:n_components] / total


def procrustes_distance(model, data, n_components=3) -> float:
    """Orthogonal Procrustes distance between the PC trajectories (see module doc)."""
    a, b, k = _check_pair(model, data, n_components)
    pa, _ = pca(a, k)
    pb, _ = pca(b, k)
    na, nb = np.linalg.norm(pa), np.linalg.norm(pb)
    if na == 0 or nb == 0:
        raise ShapeError("activity has no variance; Procrustes distance undefined")
    nuc = np.linalg.svd((pa / na).T @ (pb / nb), compute_uv=False).sum()
    return float(np.sqrt(max(0.0, 2.0 - 2.0 * nuc)))


def cca_correlations(model, data, n_components=3) -> np.ndarray:
    """Canonical correlations (descending) between the top PCs of both."""
    a, b, k = _check_pair(model, data, n_components)
    pa, _ = pca(a, k)
    pb, _ = pca(b, k)
    qa, _ = np.linalg.qr(pa)
    qb, _ = np.linalg.qr(pb)
    return np.clip(np.linalg.svd(qa.T @ qb, compute_uv=False), 0.0, 1.0)


def compare(model, data, n_components=3) -> dict:
    """Both measures at once: ``{"procrustes": d, "cca": [rho_1..rho_k], "cca_mean": mean}``."""
    d = procrustes_distance(model, data, n_components)
    rho = cca_correlations(model, data, n_components)
    return {"procrustes": d, "cca": rho.tolist(), "cca_mean": float(rho.mean()), "n_components": int(n_components)}


# -- comparison by trial condition --------------------------------------------------
def condition_labels(trials, by="condition") -> np.ndarray:
    """One text label per trial, from the trial-table columns ``by``.

    Parameters
    ----------
    trials : dict of str to array, each (n_trials,)
        A trial table (as :func:`bioplastic.read_nwb` returns it); ragged
        columns are arrays of 1-D arrays.
    by : str or sequence of str, default "condition"
        Columns that define a condition. A column whose name holds "time"
        (other than ``start_time``/``stop_time``) is taken relative to each
        trial's ``start_time``, so the same event in trials laid end to end
        gives the same label. Numbers are rounded to 9 decimals.

    Returns
    -------
    ndarray of str, shape (n_trials,)

    Raises
    ------
    ConfigError
        If a column is missing (the message lists the table's columns).
    """
    cols = [by] if isinstance(by, str) else list(by)
    missing = [c for c in cols if c not in trials]
    if missing or not cols:
        raise ConfigError(f"trial table has no column(s) {missing or by!r} to define conditions by; "
                          f"it has {sorted(trials)}")
    start = np.asarray(trials.get("start_time", 0.0), dtype=float)
    n = len(trials[cols[0]])
    start = np.broadcast_to(start, (n,))
    labels = []
    for b in range(n):
        parts = []
        for c in cols:
            v = trials[c][b]
            relative = "time" in c and c not in ("start_time", "stop_time")
            parts.append(_label_value(v, start[b] if relative else 0.0))
        labels.append(parts[0] if len(cols) == 1 else ";".join(f"{c}={p}" for c, p in zip(cols, parts)))
    return np.array(labels, dtype=object)


def _label_value(v, offset):
    if isinstance(v, (str, bytes)):
        return v.decode() if isinstance(v, bytes) else v
    a = np.atleast_1d(np.asarray(v))
    if a.dtype.kind == "f":
        a = np.round(a - offset, 9) + 0.0  # + 0.0 turns -0.0 into 0.0
    text = ",".join(repr(x.item()) for x in a)
    return text if np.ndim(v) == 0 else f"[{text}]"


def condition_average(activity, trials, by="condition", conditions=None):
    """Average the trials of each condition: condition-averaged PSTHs.

    Parameters
    ----------
    activity : array_like, shape (T, n_trials, units)
        Time first.
    trials : dict
        Its trial table (one row per trial).
    by : str or sequence of str
        See :func:`condition_labels`.
    conditions : sequence of str, optional
        Labels to average, in this order (default: every label, sorted).

    Returns
    -------
    labels : list of str
    means : ndarray, shape (T, n_conditions, units)
    counts : ndarray of int, shape (n_conditions,)
    """
    x = np.asarray(activity, dtype=float)
    labels = condition_labels(trials, by)
    if x.ndim != 3 or x.shape[1] != len(labels):
        raise ShapeError(f"activity must be (T, n_trials, units) with n_trials = {len(labels)} rows of the "
                         f"trial table; got {x.shape}")
    conditions = sorted(set(labels)) if conditions is None else list(conditions)
    means = np.empty((x.shape[0], len(conditions), x.shape[2]))
    counts = np.zeros(len(conditions), dtype=np.int64)
    for i, c in enumerate(conditions):
        rows = labels == c
        counts[i] = rows.sum()
        if counts[i] == 0:
            raise ShapeError(f"no trial has condition {c!r}")
        means[:, i] = x[:, rows].mean(axis=1)
    return conditions, means, counts


def split_half_ceiling(data, trials, by="condition", conditions=None, n_components=3, n_splits=20,
                       seed=0) -> dict:
    """Split-half noise ceiling of the condition-averaged data.

    ``n_splits`` times, the trials of each condition (with at least two) are
    split in two random halves (``numpy.random.default_rng(seed)``); the
    two halves' condition averages are compared with :func:`compare`, the
    same measures as model vs data. The medians say how similar the data
    are to themselves: a model cannot be expected to do better.

    Each half averages half the trials, so the split-half similarity
    underestimates the reliability of the full average; for the mean
    canonical correlation the Spearman-Brown correction ``2 r / (1 + r)``
    is reported too, treating it like a correlation between two parallel
    halves (an approximation). The Procrustes distance is reported as it is.

    Returns
    -------
    dict
        ``procrustes``, ``cca_mean`` (medians over splits),
        ``cca_mean_spearman_brown``, ``n_splits``, ``n_conditions``,
        ``seed``; the medians are None and ``reason`` says why when no
        condition has two trials.
    """
    x = np.asarray(data, dtype=float)
    labels = condition_labels(trials, by)
    if x.ndim != 3 or x.shape[1] != len(labels):
        raise ShapeError(f"data must be (T, n_trials, units) with n_trials = {len(labels)}; got {x.shape}")
    if conditions is None:
        conditions = sorted(set(labels))
    groups = [np.flatnonzero(labels == c) for c in conditions]
    groups = [g for g in groups if len(g) >= 2]
    out = {"n_splits": int(n_splits), "n_conditions": len(groups), "seed": seed}
    if not groups:
        return {**out, "procrustes": None, "cca_mean": None, "cca_mean_spearman_brown": None,
                "reason": "no condition has two or more data trials to split"}
    rng = np.random.default_rng(seed)
    d, r = [], []
    for _ in range(int(n_splits)):
        halves = ([], [])
        for g in groups:
            p = rng.permutation(g)
            halves[0].append(x[:, p[:len(p) // 2]].mean(axis=1))
            halves[1].append(x[:, p[len(p) // 2:]].mean(axis=1))
        res = compare(np.stack(halves[0], axis=1), np.stack(halves[1], axis=1), n_components)
        d.append(res["procrustes"])
        r.append(res["cca_mean"])
    rho = float(np.median(r))
    return {**out, "procrustes": float(np.median(d)), "cca_mean": rho,
            "cca_mean_spearman_brown": 2 * rho / (1 + rho) if rho > -1 else None}


def compare_conditions(model, model_trials, data, data_trials, by="condition", n_components=3, n_splits=20,
                       seed=0) -> dict:
    """Compare model and data by trial condition, with a split-half noise ceiling.

    Model and data trials need not share inputs: each side's trials are
    grouped by condition (:func:`condition_labels`), averaged within
    condition, and the conditions both have are compared as
    (time x conditions, units) activity with :func:`compare`. Beside the
    score, :func:`split_half_ceiling` of the data on the same conditions.

    Parameters
    ----------
    model, data : array_like, shape (T, n_trials, units)
        Time first; the same T (time bins) on both sides, any unit counts.
    model_trials, data_trials : dict
        Their trial tables.
    by : str or sequence of str, default "condition"
        Columns defining a condition, on both sides.
    n_components, n_splits, seed
        Principal components compared; random splits of the ceiling and their seed.

    Returns
    -------
    dict
        ``procrustes``, ``cca``, ``cca_mean``, ``n_components`` (as
        :func:`compare`), ``conditions`` (matched labels), ``n_conditions``,
        ``model_trials`` and ``data_trials`` (trials per matched condition),
        ``unmatched`` (conditions only one side has) and ``ceiling``
        (:func:`split_half_ceiling`; when only some shared conditions have
        two data trials, ``ceiling["score_same_conditions"]`` scores the
        model on just those, like for like).

    Raises
    ------
    ConfigError
        If the two sides share no condition.
    ShapeError
        If the time bins differ or the arrays do not fit their tables.
    """
    m = np.asarray(model, dtype=float)
    x = np.asarray(data, dtype=float)
    if m.ndim != 3 or x.ndim != 3 or m.shape[0] != x.shape[0]:
        raise ShapeError(f"model and data must be (T, n_trials, units) with the same T (time bins); got "
                         f"{m.shape} and {x.shape}: cut the data to the model's bins (read_nwb's window, and bin_width "
                         "for units)")
    model_labels = set(condition_labels(model_trials, by))
    data_labels = set(condition_labels(data_trials, by))
    shared = sorted(model_labels & data_labels)
    if not shared:
        raise ConfigError(f"model and data share no trial condition by {by!r}: model has e.g. "
                          f"{sorted(model_labels)[:3]}, data {sorted(data_labels)[:3]}")
    _, mm, mc = condition_average(m, model_trials, by, shared)
    _, dm, dc = condition_average(x, data_trials, by, shared)
    out = compare(mm, dm, n_components)
    ceiling = split_half_ceiling(x, data_trials, by, shared, n_components, n_splits, seed)
    split = dc >= 2
    if 0 < split.sum() < len(shared):
        # the ceiling sees only conditions with two data trials: score those too, like for like
        same = compare(mm[:, split], dm[:, split], n_components)
        ceiling["score_same_conditions"] = {"procrustes": same["procrustes"], "cca_mean": same["cca_mean"]}
    out.update({"conditions": shared, "n_conditions": len(shared), "model_trials": mc.tolist(),
                "data_trials": dc.tolist(),
                "unmatched": {"model_only": len(model_labels - data_labels),
                              "data_only": len(data_labels - model_labels)},
                "ceiling": ceiling})
    return out
