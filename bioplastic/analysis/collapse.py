"""Has a network collapsed onto a trivial attractor? End-of-run outcome of a training run.

**This is the project's operational reconstruction.** The paper (Haputhanthri
et al. 2025) says that freeze-in training without its cures (random weight
perturbations, a lambda_TCR controller; see
:mod:`bioplastic.rules.freeze_in`) can converge to *trivial fixed-point
attractors*: the activity settles onto a point that ignores the inputs, so
no memory is held. It gives no definition; the one below is ours.

Definition
----------
Let ``F`` be the network's autonomous map at zero input (the silent memory
periods of the built-in tasks; :func:`~bioplastic.analysis.maps.autonomous_map`),
``D`` the state dimension (N, or 2H for the LSTM) and ``r = tol * sqrt(D)``
the merge radius.

1. Run ``n_trials`` held-out trials of the task's memory variant (silences
   ``silence_factor`` times longer, :meth:`Task.memory_variant`; the plain
   task if it has none), noise off, and take per trial ``k`` the state
   ``s_k`` at the end of the last silent step of the memory epoch (the last
   step of the epoch if no step is silent, the final state if the task has
   no such epoch). For the flip-flop this is the final state unless a pulse
   is still on at the end of the trial.
2. Settle: run ``e_k = F^M(s_k)`` for ``M = settle_steps`` steps (stopping
   early once every state moves by less than 1e-12 per step).
3. Cluster the end points greedily: the end point with the most end points
   within ``r`` becomes a centre and takes them; repeat on the rest.
   ``n_end_clusters`` (= ``n_memories_held``) is the number of clusters.
4. The **trivial attractor** ``x_triv`` is the mean of the largest cluster
   (replaced by the nearest stable fixed point of ``F`` within ``r`` if there
   is one). Then::

       share_at_trivial    = (1/K) #{k : |e_k - x_triv| <= r}
       distance_to_trivial = median_k |s_k - x_triv| / sqrt(D)
       trivial_norm        = |x_triv| / sqrt(D)
       spread              = sqrt((1/K) sum_k |e_k - mean_j e_j|^2) / sqrt(D)

   ``trivial_is_quiescent`` is ``trivial_norm < tol`` (the origin, or close).
5. ``collapsed`` is ``share_at_trivial >= collapse_share`` (0.95): almost all
   inputs end on one attractor, so the network holds at most one memory. A
   non-finite state (or non-finite parameters) gives ``diverged = True`` and
   ``collapsed = False``.

``distance_to_trivial`` tells how the memory is lost: a small value means
the states already sit on the trivial point at the end of the silence; a
large one with ``collapsed`` true means they still differ there (a slowly
decaying memory) but all drain onto the same point.
"""
from __future__ import annotations

import time

import numpy as np

from ..errors import ConfigError, ShapeError
from ..tasks.base import integer
from ..validation import expect_shape, positive
from .fixed_points import find_fixed_points
from .maps import autonomous_map, trajectory_states

#: Outcomes of :func:`classify_outcome`, in order of priority.
OUTCOMES = ("diverged", "solved", "collapsed", "unsolved")

#: Keys of the dict :func:`collapse_report` returns.
REPORT_KEYS = ("collapsed", "diverged", "n_memories_held", "n_required", "n_end_clusters", "cluster_shares",
               "share_at_trivial", "distance_to_trivial", "trivial_norm", "trivial_is_quiescent",
               "trivial_is_fixed_point", "trivial_state", "spread", "n_stable", "n_fixed", "stable_points",
               "settled", "end_speed_max", "settle_steps_run", "n_trials", "n_units", "tol", "radius",
               "silence_factor", "memory_variant", "seed", "seconds")


def _memory_task(task, silence_factor):
    """(task to run, whether it is the memory variant)."""
    if silence_factor is None or float(silence_factor) <= 1:
        return task, False
    try:
        return task.memory_variant(silence_factor), True
    except ConfigError:  # the task defines no memory variant
        return task, False


def end_of_silence_index(batch, memory_epoch) -> np.ndarray:
    """Index into the states (T+1, B, D) at the end of each trial's last silent memory step, (B,).

    The last step ``t`` that is in ``memory_epoch`` with all inputs zero gives
    state ``t + 1``; failing that the last step of the epoch; failing that
    (no such epoch, or empty) the final state ``T``.
    """
    T, B = batch.inputs.shape[:2]
    silent = np.all(batch.inputs == 0, axis=2)
    epoch = batch.epochs.get(memory_epoch) if memory_epoch else None
    idx = np.full(B, T, dtype=np.int64)
    if epoch is None:
        return idx
    steps = np.arange(T)[:, None]
    for mask in (epoch, epoch & silent):  # the second overrides where it has a step
        has = mask.any(axis=0)
        last = np.where(mask, steps, -1).max(axis=0)
        idx = np.where(has, last + 1, idx)
    return idx


def greedy_clusters(X, radius) -> tuple[np.ndarray, np.ndarray]:
    """Greedy maximum-coverage clustering of the rows of ``X`` (K, D).

    Repeatedly the unassigned point with the most unassigned points within
    ``radius`` (Euclidean; ties to the lowest index) becomes a centre and
    takes them. Deterministic; clusters come out in decreasing size.

    Returns
    -------
    labels : (K,) int, cluster of each row
    centres : (C,) int, row index of each cluster's centre
    """
    X = np.asarray(X, dtype=np.float64)
    K = expect_shape("X", X, (None, None), "(K, D)")[0]
    # Differences, not |x|^2 + |y|^2 - 2 x.y: far from the origin that form cancels
    # catastrophically and could leave a point farther than ``radius`` from itself.
    d2 = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=2)
    close = d2 <= radius ** 2
    np.fill_diagonal(close, True)  # every point covers itself, so each round assigns one
    labels = np.full(K, -1, dtype=np.int64)
    centres = []
    free = np.ones(K, dtype=bool)
    while free.any():
        counts = np.where(free, (close & free[None, :]).sum(axis=1), -1)
        i = int(np.argmax(counts))
        members = close[i] & free
        labels[members] = len(centres)
        centres.append(i)
        free &= ~members
    return labels, np.asarray(centres, dtype=np.int64)


def _listed(arr, limit):
    """``arr.tolist()`` if it has at most ``limit`` numbers, else None."""
    arr = np.asarray(arr, dtype=np.float64)
    return arr.tolist() if arr.size <= limit else None


def _settle(F, X, n_steps, *, check_every=50, still=1e-12):
    """Run ``F`` up to ``n_steps`` steps from the rows of ``X``; (end states, steps run, finite)."""
    with np.errstate(over="ignore", invalid="ignore"):
        for n in range(1, n_steps + 1):
            Y = F.step(X)
            if n % check_every == 0 or n == n_steps:
                if not np.all(np.isfinite(Y)):
                    return Y, n, False
                if float(np.max(np.abs(Y - X), initial=0.0)) < still:
                    return Y, n, True
            X = Y
    return X, n_steps, bool(np.all(np.isfinite(X)))


def collapse_report(network, params, task, *, n_trials=64, seed=0, silence_factor=4, tol=0.05,
                    settle_steps=2000, collapse_share=0.95, fixed_points=True, settle_tol=1e-6,
                    list_limit=256) -> dict:
    """Decide whether a network has collapsed onto a trivial attractor (reconstruction).

    Runs held-out trials with long silences, lets each trial's state at the
    end of its last silence run on at zero input, and asks whether (almost)
    all of them end on one point. With ``D`` the state dimension,
    ``r = tol * sqrt(D)``, ``s_k`` the state at the end of trial k's last
    silent step and ``e_k = F^M(s_k)`` after ``M = settle_steps`` steps of the
    zero-input map ``F``::

        x_triv              = mean of the largest cluster of {e_k} (radius r),
                              snapped to a stable fixed point within r
        share_at_trivial    = (1/K) #{k : |e_k - x_triv| <= r}
        distance_to_trivial = median_k |s_k - x_triv| / sqrt(D)
        trivial_norm        = |x_triv| / sqrt(D)
        spread              = sqrt((1/K) sum_k |e_k - mean e|^2) / sqrt(D)
        collapsed           = share_at_trivial >= collapse_share

    See the module docstring for the full definition.

    Parameters
    ----------
    network, params : the network and its parameters
    task : Task (its :attr:`n_memories` is the number of memories needed)
    n_trials : int, held-out trials K
    seed : int, seed of the trials (the same seed gives the same report)
    silence_factor : float or None, silences of the task's memory variant are
        this many times longer; None or <= 1 (or a task without a variant):
        the plain task
    tol : float, merge radius per unit: end points closer than
        ``tol * sqrt(D)`` are one attractor; also the norm below which the
        trivial attractor counts as quiescent
    settle_steps : int, zero-input steps M run from the end of the silence
    collapse_share : float in (0, 1], share of trials on the trivial
        attractor at which the network counts as collapsed
    fixed_points : bool, also search the stable fixed points of ``F``
        (:func:`~bioplastic.analysis.fixed_points.find_fixed_points`, started
        from the ``s_k`` and the ``e_k``); False skips it (``n_stable`` None)
    settle_tol : float, ``settled`` is true when every end point moves by at
        most ``settle_tol * sqrt(D)`` per step (a fixed point, not a cycle or
        a slow drift)
    list_limit : int, positions are returned as lists only up to this many
        numbers (else None)

    Returns
    -------
    dict (JSON-friendly: floats, ints, bools, None, small lists) with keys

    - ``collapsed`` (bool), ``diverged`` (bool)
    - ``n_memories_held`` (= ``n_end_clusters``), ``n_required``
      (:attr:`Task.n_memories`, None for a continuous memory),
      ``cluster_shares`` (share of trials in each cluster, decreasing)
    - ``share_at_trivial``, ``distance_to_trivial``, ``trivial_norm``,
      ``trivial_is_quiescent``, ``trivial_is_fixed_point`` (snapped to a
      stable fixed point), ``trivial_state`` (list or None), ``spread``
    - ``n_stable``, ``n_fixed``, ``stable_points`` (list of lists or None)
    - ``settled``, ``end_speed_max`` (largest ``|F(e_k) - e_k| / sqrt(D)``),
      ``settle_steps_run``
    - settings: ``n_trials``, ``n_units`` (D), ``tol``, ``radius``,
      ``silence_factor``, ``memory_variant`` (whether it was used), ``seed``;
      and ``seconds``

    A diverged network (non-finite parameters or states) has ``diverged``
    True, ``collapsed`` False and None for the geometric quantities.

    Raises
    ------
    ConfigError
        On invalid settings, or a network whose input count does not match
        the task's.
    ShapeError
        On misshaped parameters.

    Examples
    --------
    A contracting network forgets everything: all trials end at the origin.

    >>> import numpy as np
    >>> import bioplastic as bp
    >>> task = bp.get_task("flipflop")
    >>> net = bp.make_network("lfrnn", 3, 3, n_units=3)
    >>> params = net.init_params(np.random.default_rng(0))
    >>> params["W"][:] = 0.5 * np.eye(3)
    >>> rep = collapse_report(net, params, task, n_trials=16)
    >>> rep["collapsed"], rep["n_memories_held"], rep["trivial_is_quiescent"]
    (True, 1, True)
    """
    t0 = time.perf_counter()
    n_trials = integer("n_trials", n_trials, minimum=1)
    settle_steps = integer("settle_steps", settle_steps, minimum=0)
    list_limit = integer("list_limit", list_limit, minimum=0)
    tol = positive("tol", tol)
    settle_tol = positive("settle_tol", settle_tol)
    collapse_share = positive("collapse_share", collapse_share)
    if collapse_share > 1:
        raise ConfigError(f"collapse_share must be in (0, 1], got {collapse_share!r}")
    if network.n_inputs != task.n_inputs:
        raise ConfigError(f"network has {network.n_inputs} inputs, task {task.name!r} needs {task.n_inputs}")

    run_task, variant = _memory_task(task, silence_factor)
    out = dict.fromkeys(REPORT_KEYS)
    out.update(collapsed=False, diverged=False, n_required=task.n_memories, n_trials=n_trials, tol=tol,
               silence_factor=None if silence_factor is None else float(silence_factor), memory_variant=variant,
               seed=int(seed))

    def finish():
        out["seconds"] = time.perf_counter() - t0
        return out

    checked = network.check_params(params, finite=False)
    if not all(np.all(np.isfinite(np.asarray(v))) for v in checked.values()):
        out["diverged"] = True
        return finish()

    batch = run_task.sample(n_trials, np.random.default_rng(seed))
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            traj = network.forward(params, batch.inputs)
    except ShapeError as exc:  # finite weights whose products overflow in the kernel
        if "overflow" not in str(exc):
            raise
        out["diverged"] = True
        return finish()
    S = np.asarray(trajectory_states(network, traj), dtype=np.float64)
    D = S.shape[2]
    root = float(np.sqrt(D))
    radius = tol * root
    out.update(n_units=int(D), radius=radius)
    if not np.all(np.isfinite(S)):
        out["diverged"] = True
        return finish()
    idx = end_of_silence_index(batch, run_task.memory_epoch)
    Xs = S[idx, np.arange(n_trials)]

    F = autonomous_map(network, params)
    E, n_run, finite = _settle(F, Xs.copy(), settle_steps)
    out["settle_steps_run"] = int(n_run)
    if not finite:
        out["diverged"] = True
        return finish()
    with np.errstate(over="ignore", invalid="ignore"):
        speed = np.linalg.norm(F.step(E) - E, axis=1) / root
    if not np.all(np.isfinite(speed)):
        out["diverged"] = True
        return finish()
    out["end_speed_max"] = float(speed.max())
    out["settled"] = bool(speed.max() <= settle_tol)

    labels, centres = greedy_clusters(E, radius)
    shares = np.bincount(labels) / n_trials
    out.update(n_end_clusters=int(len(centres)), n_memories_held=int(len(centres)),
               cluster_shares=[float(s) for s in shares])
    out["spread"] = float(np.sqrt(np.mean(np.sum((E - E.mean(axis=0)) ** 2, axis=1))) / root)

    x_triv = E[labels == 0].mean(axis=0)
    snapped = False
    if fixed_points:
        fp = find_fixed_points(F, initial_states=np.concatenate([Xs, E])).fixed()
        stable = fp.states[fp.is_stable]
        out.update(n_stable=int(stable.shape[0]), n_fixed=int(len(fp)), stable_points=_listed(stable, list_limit))
        if stable.shape[0]:
            d = np.linalg.norm(stable - x_triv, axis=1)
            j = int(np.argmin(d))
            if d[j] <= radius:
                x_triv, snapped = stable[j], True
    share = float(np.mean(np.linalg.norm(E - x_triv, axis=1) <= radius))
    norm = float(np.linalg.norm(x_triv)) / root
    out.update(share_at_trivial=share, trivial_norm=norm, trivial_is_quiescent=bool(norm < tol),
               trivial_is_fixed_point=snapped, trivial_state=_listed(x_triv, list_limit),
               distance_to_trivial=float(np.median(np.linalg.norm(Xs - x_triv, axis=1))) / root,
               collapsed=bool(share >= collapse_share))
    return finish()


def classify_outcome(solved: bool, diverged: bool, report: dict | None) -> str:
    """One word for how a training run ended.

    Categories, in order of priority (the first that applies):

    - ``"diverged"``: the run produced non-finite parameters or states
      (``diverged`` true, or a report that says so);
    - ``"solved"``: it met the task's success criterion
      (:mod:`bioplastic.training.criteria`);
    - ``"collapsed"``: not solved, and :func:`collapse_report` found that
      (almost) every trial ends on one trivial attractor: no memory held;
    - ``"unsolved"``: anything else (e.g. several attractors, but not the
      right ones; a slow drift; no report available).

    Parameters
    ----------
    solved, diverged : bool, from the training run
    report : dict from :func:`collapse_report`, or None

    Returns
    -------
    str, one of :data:`OUTCOMES`
    """
    report = report or {}
    if diverged or report.get("diverged"):
        return "diverged"
    if solved:
        return "solved"
    if report.get("collapsed"):
        return "collapsed"
    return "unsolved"
