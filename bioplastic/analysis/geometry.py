"""Geometric restructuring (GR) events across training checkpoints (SPEC 5).

The paper (Haputhanthri et al. 2025) calls a qualitative change of a
network's phase space during training a *GR event*, deliberately without
tying it to one bifurcation type. Its exact definition is not available to
us; this module implements the following reconstruction.

For each checkpoint k the fixed points are found (see
:mod:`bioplastic.analysis.fixed_points`; slow points are ignored here) and
labelled by stability. Between successive checkpoints k-1 -> k:

* **counts**: the number of fixed points and of stable fixed points;
* **matching**: fixed points are paired by an optimal assignment
  (Hungarian algorithm) on the cost
  ``c(p, q) = min(1, |p - q| / s)`` when p and q have the same stability
  label and ``1`` (the cut-off) otherwise, where ``s`` is the spread of the
  states the network visits (square root of their total variance, mean of
  the two checkpoints);
* **geometry distance**: the OSPA distance with cut-off 1 and order 1
  (Schuhmacher, Vo & Vo 2008) between the two labelled point sets,

      d(P, Q) = (min_pi sum_{matched} c(p, q) + |m - n|) / max(m, n),

  a metric on finite sets in [0, 1]: 0 for identical geometries, 1 when
  nothing matches (and 0 when both sets are empty).

A checkpoint k is flagged as a **GR event** when the number of stable fixed
points changes to a value that then holds for at least ``persist``
checkpoints (k included; truncated at the last checkpoint) and differs from
the last count that held that long (default 2: a one-checkpoint flicker and
its return are not events), or when ``d_k``
exceeds both ``min_distance`` and the robust outlier threshold
``median(d) + z * 1.4826 * MAD(d)`` over the run's transitions. Counting the
stable fixed points is reliable because trajectories approach them; saddle
counts depend on sampling, so saddles enter only through the distance.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..errors import ConfigError, ShapeError
from ..validation import expect_shape
from .fixed_points import FixedPoints


def match_fixed_points(P: FixedPoints, Q: FixedPoints, scale: float, cutoff: float = 1.0):
    """Optimal matching of two labelled fixed-point sets.

    Parameters
    ----------
    P, Q : FixedPoints (only their fixed points are used)
    scale : float, the length unit s (state spread)
    cutoff : float, cost of an unmatched point and the largest pair cost

    Returns
    -------
    pairs : (M, 2) int array of matched indices into ``P.fixed()``, ``Q.fixed()``
        (pairs at the cut-off, i.e. not really matched, are left out)
    cost : (M,) normalised distances of those pairs
    distance : float, the OSPA distance d(P, Q) in [0, cutoff]
    """
    if not np.isfinite(scale) or scale <= 0:
        raise ConfigError(f"scale must be positive, got {scale!r}")
    # NumPy would broadcast a D = 1 set against the other
    expect_shape("Q.states", Q.states, (None, P.states.shape[1]), "(K, D) of P.states")
    p, q = P.fixed(), Q.fixed()
    m, n = len(p), len(q)
    if m == 0 and n == 0:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0), 0.0
    if m == 0 or n == 0:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0), float(cutoff)
    dist = np.linalg.norm(p.states[:, None, :] - q.states[None, :, :], axis=2) / scale
    same = p.stability_code[:, None] == q.stability_code[None, :]
    C = np.where(same, np.minimum(dist, cutoff), cutoff)
    rows, cols = linear_sum_assignment(C)
    total = C[rows, cols].sum() + cutoff * abs(m - n)
    real = C[rows, cols] < cutoff
    pairs = np.stack([rows[real], cols[real]], axis=1).astype(np.int64)
    return pairs, C[rows, cols][real], float(total / max(m, n))


@dataclass
class GREvents:
    """Fixed-point geometry along training and the flagged GR events.

    Attributes
    ----------
    iterations : (C,) int, checkpoint iterations
    n_fixed, n_stable : (C,) int
    distance : (C,) float, geometry distance to the previous checkpoint
        (NaN at the first)
    matched_shift : (C,) float, mean normalised displacement of matched
        fixed points since the previous checkpoint (NaN if none matched)
    is_event : (C,) bool
    reasons : list of str, why each checkpoint was flagged ('' if not)
    threshold : float, the distance threshold used
    settings : dict
    """

    iterations: np.ndarray
    n_fixed: np.ndarray
    n_stable: np.ndarray
    distance: np.ndarray
    matched_shift: np.ndarray
    is_event: np.ndarray
    reasons: list
    threshold: float
    settings: dict = field(default_factory=dict)

    @property
    def events(self) -> np.ndarray:
        """Iterations of the GR events."""
        return self.iterations[self.is_event]


def gr_events(fixed_points: dict, scales, *, z: float = 3.0, min_distance: float = 0.2,
              cutoff: float = 1.0, persist: int = 2) -> GREvents:
    """Flag GR events in a sequence of checkpoints' fixed points.

    Parameters
    ----------
    fixed_points : dict iteration -> FixedPoints
        At least two checkpoints.
    scales : dict iteration -> float, or float
        State spread s at each checkpoint (see module docstring).
    z : float, outlier threshold in robust standard deviations
    min_distance : float, a distance below this is never an event
    cutoff : float, OSPA cut-off (the distance's maximum)
    persist : int, checkpoints a new stable count must hold to be an event
        (1: every change)

    Returns
    -------
    GREvents

    Raises
    ------
    ConfigError
        With fewer than two checkpoints or a non-positive scale.
    """
    if isinstance(persist, bool) or not isinstance(persist, (int, np.integer)) or persist < 1:
        raise ConfigError(f"persist must be a positive integer, got {persist!r}")
    if not isinstance(fixed_points, dict) or len(fixed_points) < 2:
        n = len(fixed_points) if isinstance(fixed_points, dict) else "no"
        raise ConfigError(f"GR events compare successive checkpoints: need at least 2, got {n}")
    its = np.array(sorted(int(k) for k in fixed_points), dtype=np.int64)
    fps = [fixed_points[k] for k in its]
    if np.isscalar(scales):
        sc = np.full(len(its), float(scales))
    else:
        sc = np.array([float(scales[k]) for k in its])
    if not np.all(np.isfinite(sc) & (sc > 0)):
        raise ConfigError(f"state scales must be positive and finite, got {sc.tolist()}")
    C = len(its)
    n_fixed = np.array([fp.n_fixed for fp in fps])
    n_stable = np.array([fp.n_stable for fp in fps])
    dist = np.full(C, np.nan)
    shift = np.full(C, np.nan)
    for i in range(1, C):
        pairs, cost, d = match_fixed_points(fps[i - 1], fps[i], 0.5 * (sc[i - 1] + sc[i]), cutoff)
        dist[i] = d
        if len(cost):
            shift[i] = float(cost.mean())
    d = dist[1:]
    med = float(np.median(d))
    mad = float(np.median(np.abs(d - med)))
    threshold = max(min_distance, med + z * 1.4826 * mad)
    is_event = np.zeros(C, dtype=bool)
    reasons = [""] * C
    settled = n_stable[0]  # the last stable count that held for `persist` checkpoints
    for i in range(1, C):
        why = []
        if n_stable[i] != settled and np.all(n_stable[i:i + persist] == n_stable[i]):
            why.append(f"stable fixed points {settled} -> {n_stable[i]}")
            settled = n_stable[i]
        if dist[i] > threshold:
            why.append(f"geometry distance {dist[i]:.2f} > {threshold:.2f}")
        if why:
            is_event[i] = True
            reasons[i] = "; ".join(why)
    settings = {"z": z, "min_distance": min_distance, "cutoff": cutoff, "persist": persist}
    return GREvents(its, n_fixed, n_stable, dist, shift, is_event, reasons, threshold, settings)


def state_spread(states) -> float:
    """s = sqrt(total variance) of visited states (..., D); 1.0 if they do not vary."""
    X = np.asarray(states, dtype=np.float64)
    if X.ndim < 2:
        raise ShapeError(f"states must have shape (..., D), got {X.shape}")
    X = X.reshape(-1, X.shape[-1])
    if not np.all(np.isfinite(X)):
        raise ShapeError(f"states contain {int(np.sum(~np.isfinite(X)))} non-finite value(s) (NaN or inf)")
    s = float(np.sqrt(X.var(axis=0).sum()))
    return s if s > 0 and np.isfinite(s) else 1.0
