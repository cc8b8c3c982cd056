"""Brian2 export of trained rate networks (SPEC 8): the bioplastic side.

Three modes (:data:`MODES`):

- ``"rate"``: the network as Brian2 equations with a summed synaptic input
  and TimedArray inputs (:mod:`bioplastic.export.brian2_rate`). With
  ``method='euler'`` and the same ``dt`` it reproduces bioplastic's
  trajectory of the same trial to rounding (float64: max abs difference
  far below 1e-8).
- ``"spiking"``: each rate unit becomes a population of Poisson neurons whose
  firing rate encodes the unit's rate (:mod:`bioplastic.export.brian2_spiking`
  documents the mapping); the task output is decoded from the population
  activity.
- ``"lif"``: a network of leaky integrate-and-fire neurons with exponential
  synapses whose own recurrent dynamics do the task (Kim, Li & Sejnowski
  2019; :mod:`bioplastic.export.brian2_lif` documents the equations), one
  neuron or a population per unit, with the rate-to-spike scaling
  ``lambda`` found on held-out trials (:mod:`bioplastic.export.lif_transfer`).

Which models each mode supports is :data:`SUPPORTED`. brian2 is an optional
dependency (``pip install 'bioplastic[brian2]'``), imported only when a
simulation runs. :func:`write_export` writes a standalone script plus a
weights file that run with brian2 and numpy alone.

Examples
--------
>>> import numpy as np, bioplastic as bp
>>> from bioplastic.export import brian2 as b2x
>>> net = bp.make_network("lfrnn", 3, 3, n_units=8)
>>> params = net.init_params(np.random.default_rng(0))
>>> model = b2x.to_brian2_model(net, params)
>>> model["kind"], model["arrays"]["W"].shape
('lfrnn', (8, 8))
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from ..errors import ConfigError, SchemaError, ShapeError
from .brian2_rate import MODEL_FORMAT, MODEL_VERSION, PHI_EXPR, check_model
from .brian2_lif import LIF_DEFAULTS, LIF_FITTED, LIF_PHI
from .brian2_spiking import BOUNDED_PHI, SPIKING_DEFAULTS, check_spiking_options

MODES = ("rate", "spiking", "lif")
#: brian2 code generation targets; "auto" is cython when a compiler works, else numpy
CODEGENS = ("auto", "numpy", "cython")
#: seconds per time unit of the rate network (dt = 1 -> 10 ms, tau = 10 -> 100 ms)
DEFAULT_TIME_UNIT = 0.01
#: model kind -> nonlinearities each mode accepts
SUPPORTED = {
    "rate": {"lfrnn": tuple(PHI_EXPR), "rank1": tuple(PHI_EXPR), "plrnn": ("relu",)},
    "spiking": {"lfrnn": tuple(BOUNDED_PHI), "rank1": tuple(BOUNDED_PHI)},
    "lif": {"lfrnn": tuple(LIF_PHI), "rank1": tuple(LIF_PHI)},
}
#: options of each spiking mode, with their defaults
MODE_OPTIONS = {"rate": {}, "spiking": SPIKING_DEFAULTS,
                "lif": {**LIF_DEFAULTS, **{k: None for k in LIF_FITTED}}}


def _supported_text(mode):
    return "; ".join(f"{k} ({', '.join(v)})" for k, v in SUPPORTED[mode].items())


def check_supported(network, mode: str) -> None:
    """Raise ConfigError unless ``mode`` can export ``network``, naming what exists."""
    if mode not in MODES:
        raise ConfigError(f"unknown Brian2 export mode {mode!r}; modes: {', '.join(MODES)}")
    kind = getattr(network, "kind", type(network).__name__)
    phi = "relu" if kind == "plrnn" else getattr(network, "nonlinearity", None)
    ok = SUPPORTED[mode].get(kind)
    if ok is None or phi not in ok:
        what = kind if ok is None else f"{kind} with nonlinearity {phi!r}"
        raise ConfigError(f"Brian2 {mode} mode does not support {what}; {mode} mode supports: "
                          f"{_supported_text(mode)}. Modes: "
                          + ", ".join(f"{m}: {_supported_text(m)}" for m in MODES))


def to_brian2_model(network, params, *, time_unit: float = DEFAULT_TIME_UNIT, mode: str = "rate") -> dict:
    """The exported model dict of ``network`` with ``params`` (see ``brian2_rate.check_model``).

    Parameters
    ----------
    network : LFRNN, RankOneRNN or PLRNN
    params : its parameters (checked with ``network.check_params``)
    time_unit : float
        Seconds per time unit of the rate network (default 0.01: the default
        ``dt = 1, tau = 10`` become 10 ms and 100 ms, a common cortical
        rate-network setting). Rate mode results do not depend on it; in
        spiking mode it sets how fast the network is against the synaptic
        filters and how many spikes fall in one ``tau``.
    mode : {"rate", "spiking"}
        Only used to check support.

    Returns
    -------
    dict
        Settings and float64 arrays in the form shared by the LFRNN and the
        PLRNN (``brian2_rate``): an LFRNN or rank-one RNN exports its
        effective ``W`` (rank-one: ``g chi + m n^T / N``), a PLRNN
        ``leak = 1 - A``. A float32 network is exported in float64, so it
        agrees with its own (float32) trajectory only to float32 rounding.

    Raises
    ------
    ConfigError
        For a model or nonlinearity the mode does not support (e.g. an LSTM).
    """
    check_supported(network, mode)
    if not float(time_unit) > 0:
        raise ConfigError(f"time_unit must be > 0 seconds, got {time_unit!r}")
    p = network.check_params(params)
    p = {k: np.asarray(v, dtype=np.float64) for k, v in p.items()}
    N = network.n_units
    if network.kind == "plrnn":
        arrays = {"W": p["W"], "W_in": p["C"], "bias": p["h"], "leak": 1.0 - p["A"],
                  "W_out": p["W_out"], "b_out": p["b_out"]}
        kind, phi, tau_m = "plrnn", "relu", network.dt
        readout_from = "states" if network.readout_from == "z" else "rates"
    else:
        W = np.asarray(network.recurrent_weights(p), dtype=np.float64)
        arrays = {"W": W, "W_in": p["W_in"], "bias": p["b"], "leak": np.ones(N),
                  "W_out": p["W_out"], "b_out": p["b_out"]}
        kind, phi, tau_m, readout_from = "lfrnn", network.nonlinearity, network.tau, "rates"
    model = {"format": MODEL_FORMAT, "version": MODEL_VERSION, "kind": kind, "source_kind": network.kind,
             "phi": phi, "dt": float(network.dt), "tau_m": float(tau_m), "time_unit": float(time_unit),
             "readout_from": readout_from,
             "noise_scale": float(np.sqrt(network.alpha) * network.noise_std),
             "arrays": {k: np.array(v, dtype=np.float64) for k, v in arrays.items()}}
    return check_model(model)


# ---------------------------------------------------------------------------
# run files


def load_trained(run_path):
    """Network, trained parameters and task of a run file.

    Returns
    -------
    (network, params, task, run) with ``run`` the :class:`~bioplastic.io.RunData`.

    Raises
    ------
    SchemaError
        If the file is not a bioplastic run file (e.g. a foreign HDF5 file), or
        holds no trained parameters (empty ``/params``) or not the ones its
        model needs.
    """
    from ..io.runfile import read_run
    from ..networks import make_network
    from ..tasks import get_task

    run = read_run(run_path, checkpoints=False)
    if not run.params:
        raise SchemaError(f"run file {str(run_path)!r} holds no trained parameters (/params is empty; "
                          f"status {run.status!r}); train it first")
    model_cfg = dict(run.config.get("model", {}))
    task_cfg = dict(run.config.get("task", {}))
    if "kind" not in model_cfg or "name" not in task_cfg:
        raise SchemaError(f"run file {str(run_path)!r} lacks config['model']['kind'] or config['task']['name']")
    kind = model_cfg.pop("kind")
    task = get_task(task_cfg.pop("name"), **task_cfg)
    n_in = model_cfg.pop("n_inputs", task.n_inputs)
    n_out = model_cfg.pop("n_outputs", task.n_outputs)
    net = make_network(kind, n_in, n_out, **model_cfg)
    try:
        params = net.check_params(run.params)
    except ShapeError as exc:  # names the missing or misshaped array
        raise SchemaError(f"run file {str(run_path)!r}: trained parameters do not fit its {kind} model: "
                          f"{exc}") from exc
    return net, params, task, run


# ---------------------------------------------------------------------------
# agreement figures


def rate_agreement(bp_traj, b2_result) -> dict:
    """Max abs differences between bioplastic's and Brian2's rate-mode trajectories."""
    out = {}
    for key, ref in (("states", bp_traj.states), ("rates", bp_traj.rates), ("outputs", bp_traj.outputs)):
        out[f"max_abs_diff_{key}"] = float(np.max(np.abs(np.asarray(b2_result[key]) - ref)))
    out["max_abs_diff"] = max(out.values())
    return out


def spiking_agreement(bp_traj, sp_result, task=None, batch=None) -> dict:
    """How closely the spiking populations track the rate network.

    Returns the Pearson correlation of population rate estimates with the
    rate network's rates (pooled over time, trials and units, and the median
    over units of the per-unit correlation), the RMS difference, the output
    correlation, and, given ``task`` and ``batch``, the task accuracy of the
    outputs decoded from spikes and of the rate network on the same trials.
    """
    r_hat = np.asarray(sp_result["rates"])
    r = bp_traj.rates
    out = {"rate_correlation": _corr(r_hat.ravel(), r.ravel()),
           "rate_correlation_median_unit": float(np.nanmedian(
               [_corr(r_hat[:, :, i].ravel(), r[:, :, i].ravel()) for i in range(r.shape[2])])),
           "rate_rmse": float(np.sqrt(np.mean((r_hat - r) ** 2))),
           "output_correlation": _corr(np.asarray(sp_result["outputs"]).ravel(), bp_traj.outputs.ravel()),
           "mean_rate_hz": float(np.mean(sp_result["pop_rate_hz"]))}
    if task is not None and batch is not None:
        out["accuracy_spiking"] = task.accuracy(sp_result["outputs"], batch)
        out["accuracy_rate"] = task.accuracy(bp_traj.outputs, batch)
    return out


def _corr(a, b) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / den) if den > 0 else float("nan")


# ---------------------------------------------------------------------------
# simulations (brian2 imported lazily inside)


def resolve_codegen(codegen: str, log=None) -> str:
    """The brian2 target to use: ``"auto"`` is cython when a C compiler works, else numpy (said via ``log``).

    Raises ConfigError for an unknown target, or for ``"cython"`` when no
    compiler is available.
    """
    if codegen not in CODEGENS:
        raise ConfigError(f"codegen must be one of {', '.join(CODEGENS)}, got {codegen!r}")
    if codegen == "numpy":
        return codegen
    from .brian2_rate import import_brian2

    import_brian2()
    from brian2.codegen.runtime.cython_rt import CythonCodeObject

    if CythonCodeObject.is_available():
        return "cython"
    if codegen == "cython":
        raise ConfigError("brian2's cython target needs a working C compiler and Cython, and none was found; "
                          "use --codegen numpy (slower) or install a compiler")
    if log is not None:
        log("no working C compiler for brian2's cython target: using the numpy target (slower, same results "
            "up to random-number streams)")
    return "numpy"


def check_mode_options(mode: str, options: dict) -> dict:
    """Refuse options ``mode`` does not take, naming the known ones."""
    if mode not in MODES:
        raise ConfigError(f"unknown Brian2 export mode {mode!r}; modes: {', '.join(MODES)}")
    known = MODE_OPTIONS[mode]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"unknown {mode} option(s) {unknown}; known: {sorted(known) or 'none'}")
    return dict(options)


def simulate(model, inputs, *, mode="rate", x0=None, noise=None, codegen="numpy", **options):
    """Run an exported model in Brian2 (``mode`` "rate", "spiking" or "lif").

    Spiking options default to :data:`SPIKING_DEFAULTS`, LIF options to
    :data:`~bioplastic.export.brian2_lif.LIF_DEFAULTS` (and need the fitted
    ``lam``, ``mu0`` and ``gain``). Raises ImportError naming the extra when
    brian2 is missing.
    """
    options = check_mode_options(mode, options)
    codegen = resolve_codegen(codegen)
    if mode != "rate" and noise is not None:
        raise ConfigError(f"{mode} mode takes no noise array: its spikes are its noise")
    try:
        if mode == "rate":
            from .brian2_rate import simulate_rate

            return simulate_rate(model, inputs, x0=x0, noise=noise, codegen=codegen)
        if mode == "spiking":
            from .brian2_spiking import simulate_spiking

            return simulate_spiking(model, inputs, x0=x0, codegen=codegen, **options)
        from .brian2_lif import simulate_lif

        return simulate_lif(model, inputs, x0=x0, codegen=codegen, **options)
    except ValueError as exc:  # the brian2-only modules raise ValueError (they cannot import ours)
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from exc


def write_export(run_path, out, *, mode="rate", force=False, trials=8, trial_seed=0,
                 time_unit=DEFAULT_TIME_UNIT, codegen="numpy", spiking=None, lif=None, lam_grid=None,
                 search_trials=16, progress=None) -> dict:
    """Write ``OUT/brian2_<mode>.py`` and ``OUT/weights.npz`` for a trained run file.

    The weights file holds the exported model, ``trials`` task trials drawn
    with ``numpy.random.default_rng(trial_seed)`` (``inputs``, ``targets``,
    ``loss_mask``), the initial state and the settings (``spiking`` options
    over :data:`SPIKING_DEFAULTS`, including the spikes' ``seed``; ``lif``
    options over :data:`~bioplastic.export.brian2_lif.LIF_DEFAULTS` with the
    fitted ``lam``, ``mu0``, ``gain``).

    LIF mode: without ``lif["lam"]``, lambda is searched over ``lam_grid``
    (default :data:`~bioplastic.export.lif_transfer.LAMBDA_GRID`) on
    ``search_trials`` trials drawn with seed ``trial_seed + 1000003`` (never
    the evaluation trials); with it, only ``mu0`` and ``gain`` are fitted.
    The search table goes into ``settings["lif_search"]``. A run file
    without recordings converts: only the weights are needed.

    Returns
    -------
    dict with ``paths`` (script, weights), ``settings``, and the ``network``,
    ``params``, ``task``, ``batch`` and exported ``model`` (for comparisons).

    Raises
    ------
    ConfigError
        If ``out`` exists and is not empty (unless ``force``), the model is
        not supported by ``mode``, or an option is unknown or out of range.
    SchemaError
        For a foreign file or a run file without trained parameters.
    """
    from .brian2_script import write_script

    spiking = check_mode_options("spiking", dict(spiking or {})) if spiking else {}
    lif = check_mode_options("lif", dict(lif or {})) if lif else {}
    if mode != "spiking" and spiking:
        raise ConfigError(f"{mode} mode takes no spiking options, got {sorted(spiking)}")
    if mode != "lif" and (lif or lam_grid is not None):
        raise ConfigError(f"{mode} mode takes no LIF options, got {sorted(lif) or ['lam_grid']}")
    net, params, task, run = load_trained(run_path)
    model = to_brian2_model(net, params, time_unit=time_unit, mode=mode)
    codegen = resolve_codegen(codegen, log=progress)
    batch = task.sample(int(trials), np.random.default_rng(trial_seed))
    settings = {"mode": mode, "codegen": codegen, "trials": int(trials), "trial_seed": int(trial_seed),
                "run_file": str(run_path), "run_seed": run.seed, "task": task.name,
                "time_unit_s": float(time_unit)}
    if mode == "spiking":
        settings["spiking"] = {**SPIKING_DEFAULTS, **spiking}
        try:  # ranges, before the output folder exists
            check_spiking_options(model, settings["spiking"])
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    if mode == "lif":
        if isinstance(search_trials, bool) or not isinstance(search_trials, (int, np.integer)) or search_trials < 1:
            raise ConfigError(f"search_trials (--search-trials) must be a positive integer, got {search_trials!r}")
        settings["lif"], settings["lif_search"] = _fit_lif(net, params, task, model, lif, lam_grid,
                                                           search_trials, int(trial_seed) + 1_000_003,
                                                           codegen, progress)
    out = prepare_out_dir(out, force)
    paths = write_script(out, model, batch.inputs, mode=mode, x0=net.initial_state(batch.batch_size),
                         settings=settings, targets=batch.targets, loss_mask=batch.loss_mask)
    return {"paths": paths, "settings": settings, "network": net, "params": params, "task": task,
            "batch": batch, "model": model}


def _fit_lif(net, params, task, model, lif, lam_grid, search_trials, search_seed, codegen, progress):
    """LIF options with lambda (searched unless given), mu0 and gain; and the search record."""
    from .brian2_lif import check_lif_options
    from .lif_transfer import LAMBDA_GRID, fit_drive, neuron_settings, search_lambda

    given = {k: lif[k] for k in LIF_FITTED if lif.get(k) is not None}
    if given and set(given) != {"lam"}:
        raise ConfigError(f"give lambda alone (mu0 and gain are fitted to it), got {sorted(given)}")
    opts = {**LIF_DEFAULTS, **{k: v for k, v in lif.items() if k not in LIF_FITTED}}
    neuron = neuron_settings(opts)
    try:
        check_lif_options(model, {**opts, "lam": 1.0, "mu0": 0.0, "gain": 1.0})  # ranges, before any work
        if "lam" in given:
            batch = task.sample(int(search_trials), np.random.default_rng(search_seed))
            fit = fit_drive(net.forward(params, batch.inputs).states, model["phi"], given["lam"], **neuron)
            search = {"lam": float(given["lam"]), "given": True, "fit": fit, "search_trials": int(search_trials),
                      "search_seed": int(search_seed)}
        else:
            search = search_lambda(net, params, task, model, grid=lam_grid or LAMBDA_GRID, trials=search_trials,
                                   seed=search_seed, codegen=codegen, options=opts, progress=progress)
            fit = {"mu0": search["mu0"], "gain": search["gain"]}
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from exc
    return {**opts, "lam": float(search["lam"]), "mu0": float(fit["mu0"]), "gain": float(fit["gain"])}, search


def prepare_out_dir(out, force: bool) -> Path:
    """Create ``out``; refuse an existing non-empty folder unless ``force``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path {str(out)!r} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigError(f"output folder {str(out)!r} exists and is not empty; use --force to write into it")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output folder {str(out)!r}: {exc}") from exc
    return out


def run_script(script, results=None, *, block_bioplastic=True, timeout=None) -> dict:
    """Run an exported script in a fresh isolated interpreter; returns its arrays and summary.

    The script runs as ``python -I`` (no PYTHONPATH, user site or script
    folder on the path) in its own folder; with ``block_bioplastic`` the
    interpreter first makes ``import bioplastic`` fail, so a script that
    needed bioplastic would crash. Returns ``{"arrays": {...}, "summary": {...}}``.

    Raises
    ------
    ConfigError
        If the script exits non-zero (its last lines are in the message).
    """
    script = Path(script).resolve()
    results = script.parent / "results.npz" if results is None else Path(results).resolve()
    args = ["--out", str(results)]
    if block_bioplastic:
        boot = ("import runpy, sys; sys.modules['bioplastic'] = None; "
                f"sys.argv = {[str(script)] + args!r}; runpy.run_path({str(script)!r}, run_name='__main__')")
        cmd = [sys.executable, "-I", "-c", boot]
    else:
        cmd = [sys.executable, "-I", str(script)] + args
    proc = subprocess.run(cmd, cwd=script.parent, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
        raise ConfigError(f"the exported script {str(script)!r} failed (exit {proc.returncode}):\n"
                          + "\n".join(tail))
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    with np.load(results) as data:
        arrays = {k: data[k] for k in data.files}
    return {"arrays": arrays, "summary": summary}


def lif_agreement(bp_traj, lif_result, task, batch, model, lif_options, x0=None) -> dict:
    """How closely the LIF network does the rate network's task, and in what firing regime.

    Returns the task accuracy decoded from the LIF network and of the rate
    network on the same trials; the accuracy of the LIF network's mean-field
    limit (:func:`~bioplastic.export.lif_transfer.mean_field_outputs`: what
    the transfer-function mismatch alone leaves); the correlations of the
    filtered spike rates with the rate units and of the outputs; and the
    firing statistics: mean and median rate per neuron (Hz), the fraction
    of neurons below 1 Hz, and the median coefficient of variation of the
    inter-spike intervals (neurons with >= 3 spikes).
    """
    from .lif_transfer import lif_transfer, mean_field_outputs, neuron_settings

    out = spiking_agreement(bp_traj, lif_result, task, batch)
    out["accuracy_lif"] = out.pop("accuracy_spiking")
    neuron = neuron_settings(lif_options)
    transfer = lif_transfer(model["phi"], lif_options, lif_options["lam"], **neuron)
    x0 = np.asarray(bp_traj.states[0] if x0 is None else x0)  # the rate network's own start
    out["accuracy_mean_field"] = task.accuracy(mean_field_outputs(model, batch.inputs, x0, transfer), batch)
    rates = np.asarray(lif_result["neuron_rate_hz"])
    cv = np.asarray(lif_result["isi_cv"])
    out.update({"neuron_rate_mean_hz": float(rates.mean()), "neuron_rate_median_hz": float(np.median(rates)),
                "fraction_below_1hz": float(np.mean(rates < 1.0)),
                "isi_cv_median": float(np.nanmedian(cv)) if np.isfinite(cv).any() else float("nan"),
                "fraction_with_cv": float(np.mean(np.isfinite(cv)))})
    return out


def flipflop_hold(network, params, model, lif_options, *, hold_steps=300, repeats=2, codegen="numpy") -> dict:
    """Memory hold times (ms) of the LIF network and of the rate network (:mod:`bioplastic.analysis.hold`)."""
    from ..analysis.hold import hold_by_memory, hold_inputs, hold_times, window_ms
    from .brian2_lif import simulate_lif

    inputs, pats = hold_inputs(hold_steps, repeats)
    dt_ms = float(model["time_unit"]) * 1e3 * float(model["dt"])
    x0 = network.initial_state(inputs.shape[1])
    lif_out = simulate_lif(model, inputs, x0=x0, codegen=codegen, **{**lif_options, "record_spikes": False})
    lif_t = hold_times(lif_out["outputs"], pats, dt_ms)
    rate_t = hold_times(network.forward(params, inputs).outputs, pats, dt_ms)
    window = window_ms(hold_steps, dt_ms)
    return {"window_ms": window, "lif_ms": hold_by_memory(lif_t, pats), "rate_ms": hold_by_memory(rate_t, pats),
            "lif_median_ms": float(np.median(lif_t)), "lif_fraction_held": float(np.mean(lif_t >= window)),
            "rate_fraction_held": float(np.mean(rate_t >= window))}


def run_script_and_compare(exp: dict, *, plot=True, hold_steps=300) -> dict:
    """Run the script of :func:`write_export` and compare it with bioplastic's forward pass.

    Writes ``agreement.json`` (and ``comparison.png`` with ``plot``) next to
    the script and returns the same summary: rate mode the max abs
    differences (and task accuracy of both), spiking mode the figures of
    :func:`spiking_agreement`, LIF mode those of :func:`lif_agreement`, the
    lambda search and, for the flip-flop, the memory hold times of
    :func:`flipflop_hold` over ``hold_steps`` silent steps.
    """
    from ..protocol import write_json

    script = exp["paths"]["script"]
    ran = run_script(script)
    res = ran["arrays"]
    net, params, task, batch = exp["network"], exp["params"], exp["task"], exp["batch"]
    traj = net.forward(params, batch.inputs)
    mode = exp["settings"]["mode"]
    if mode == "rate":
        figures = rate_agreement(traj, res)
        figures["accuracy_rate"] = task.accuracy(traj.outputs, batch)
        figures["accuracy_brian2"] = task.accuracy(res["outputs"], batch)
    elif mode == "spiking":
        figures = spiking_agreement(traj, res, task, batch)
    else:
        figures = lif_agreement(traj, res, task, batch, exp["model"], exp["settings"]["lif"])
    summary = {"mode": mode, "run_file": exp["settings"]["run_file"], "task": task.name,
               "trials": batch.batch_size, "trial_seed": exp["settings"]["trial_seed"],
               "settings": exp["settings"], "agreement": figures, "script": ran["summary"]}
    if mode == "lif" and task.name == "flipflop" and hold_steps:
        summary["hold"] = flipflop_hold(net, params, exp["model"], exp["settings"]["lif"], hold_steps=hold_steps,
                                        codegen=exp["settings"]["codegen"])
    write_json(script.parent / "agreement.json", summary)
    if plot and mode == "lif":
        from ..plotting import lif_comparison

        lif_comparison(traj, res, batch, script.parent / "comparison.png",
                       time_unit_ms=exp["model"]["time_unit"] * 1e3,
                       n_per_unit=exp["settings"]["lif"]["n_per_unit"], figures=figures)
    elif plot:
        from ..plotting import brian2_comparison

        brian2_comparison(traj, res, batch, script.parent / "comparison.png", mode=mode,
                          time_unit_ms=exp["model"]["time_unit"] * 1e3, figures=figures)
    return summary
