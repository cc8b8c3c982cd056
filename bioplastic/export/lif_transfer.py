"""Rate-to-LIF conversion: the transfer-function fit and the search for lambda (SPEC 8, LIF mode).

The LIF network of :mod:`bioplastic.export.brian2_lif` carries the rate
``r = phi(x)`` of unit i as the population rate ``nu = lambda (phi(x) - lo) /
(hi - lo)`` Hz. Its neurons fire at the stationary rate of a noisy LIF
neuron, ``F(mu0 + gain x)`` (the Siegert formula, :func:`siegert_rate_hz`),
so the conversion needs three numbers:

1. ``lambda`` (Hz), the firing rate that stands for the top of ``phi``'s
   range: the scaling factor between rate and spiking weights of Kim, Li &
   Sejnowski (2019), ``W_spk = (hi - lo) W / lambda`` per spike.
2. ``mu0`` and ``gain``, the affine map from synaptic current to membrane
   drive, fitted for a given ``lambda`` by least squares so that
   ``F(mu0 + gain x) = lambda (phi(x) - lo) / (hi - lo)`` over the synaptic
   currents ``x`` the trained network visits on the search trials
   (:func:`fit_drive`). Kim et al. fit nothing but ``lambda``; the fit is
   this project's addition (documented in docs/brian2.md).
3. ``lambda`` is chosen by a grid search (:func:`search_lambda`): for each
   ``lambda`` in the grid the fitted LIF network runs held-out *search*
   trials (drawn with their own seed, never the trials the export is
   evaluated on) and the ``lambda`` with the highest task accuracy wins;
   ties (within 1e-9) go to the smaller output error against the rate
   network, then to the smaller ``lambda`` (fewer spikes). The whole
   table is returned and written to the export's settings.

Small ``lambda`` means few spikes and a noisy estimate of each rate; large
``lambda`` needs rates the refractory period caps (``F <= 1/t_ref``), so
the fit degrades: the search trades the two.
"""
from __future__ import annotations

import numpy as np
from scipy import integrate, optimize, special

from ..errors import ConfigError
from .brian2_lif import LIF_DEFAULTS, LIF_PHI

#: default grid of lambda (Hz) searched
LAMBDA_GRID = (25.0, 50.0, 100.0, 200.0)
#: quantiles of the visited currents the fit spans (the tails add little)
FIT_RANGE = (0.005, 0.995)


def neuron_settings(options) -> dict:
    """The keyword arguments of :func:`fit_drive` and :func:`lif_transfer` from LIF options."""
    return {"noise": float(options["membrane_noise"]), "tau_mem": float(options["tau_mem"]),
            "t_ref": float(options["t_ref"])}


def siegert_rate_hz(drive, noise, tau_mem_s, t_ref_s):
    """Stationary rate (Hz) of a LIF neuron (threshold 1, reset 0, white membrane noise).

    For ``tau_mem dv/dt = -v + mu + noise sqrt(2 tau_mem) xi`` (``noise`` the
    standard deviation of the free membrane potential),
    ``1/nu = t_ref + tau_mem sqrt(pi) int_{-mu/sigma}^{(1-mu)/sigma} erfcx(-u) du``
    with ``sigma = sqrt(2) noise`` (Brunel 2000, eq. 21, whose ``sigma``
    multiplies ``sqrt(tau_mem) xi``); for ``noise = 0`` the deterministic
    ``1/nu = t_ref + tau_mem ln(mu/(mu - 1))`` above threshold and 0 below.
    """
    drive = np.atleast_1d(np.asarray(drive, dtype=np.float64))
    if noise == 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            isi = np.where(drive > 1, t_ref_s + tau_mem_s * np.log(drive / (drive - 1)), np.inf)
        return 1.0 / isi
    sigma = np.sqrt(2.0) * noise
    out = np.empty_like(drive)
    for k, mu in enumerate(drive):
        val, _ = integrate.quad(lambda u: special.erfcx(-u), -mu / sigma, (1.0 - mu) / sigma, limit=200)
        out[k] = 1.0 / (t_ref_s + tau_mem_s * np.sqrt(np.pi) * val)
    return out


def _rate_table(noise, tau_mem_s, t_ref_s, lo=-4.0, hi=8.0, n=241):
    """F on a grid of drives, for fast interpolation in the fit."""
    d = np.linspace(lo, hi, n)
    return d, siegert_rate_hz(d, noise, tau_mem_s, t_ref_s)


def fit_drive(x_samples, phi, lam, *, noise=LIF_DEFAULTS["membrane_noise"], tau_mem=LIF_DEFAULTS["tau_mem"],
              t_ref=LIF_DEFAULTS["t_ref"]) -> dict:
    """Fit ``mu0`` and ``gain`` so that ``F(mu0 + gain x)`` matches ``lam (phi(x) - lo)/(hi - lo)``.

    Parameters
    ----------
    x_samples : array
        Synaptic currents (states) of the rate network on the search trials;
        the fit is least squares over 200 quantiles spanning
        :data:`FIT_RANGE` of them, so it weights currents as often as the
        network visits them.
    phi : {"tanh", "sigmoid"}
    lam : float, Hz
    noise, tau_mem (ms), t_ref (ms) : the LIF neurons' settings

    Returns
    -------
    dict with ``mu0``, ``gain`` and ``rmse_hz`` (root mean square rate error
    over the quantiles) and ``rmse_rate`` (the same in units of phi's range).
    """
    if phi not in LIF_PHI:
        raise ConfigError(f"LIF conversion supports phi in {sorted(LIF_PHI)}, got {phi!r}")
    lam = float(lam)
    if not lam > 0:
        raise ConfigError(f"lambda must be > 0 Hz, got {lam!r}")
    x = np.asarray(x_samples, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size < 10:
        raise ConfigError("the LIF transfer fit needs at least 10 finite synaptic-current samples")
    q = np.quantile(x, np.linspace(*FIT_RANGE, 200))
    lo, hi = LIF_PHI[phi]
    target = lam * ((np.tanh(q) if phi == "tanh" else special.expit(q)) - lo) / (hi - lo)
    d, f = _rate_table(float(noise), float(tau_mem) * 1e-3, float(t_ref) * 1e-3)

    def residual(p):
        return np.interp(p[0] + p[1] * q, d, f, left=f[0], right=f[-1]) - target

    # start: phi's midpoint (x = 0) at the threshold, a moderate slope
    fit = optimize.least_squares(residual, x0=[1.0, 0.5], bounds=([d[0], 1e-3], [d[-1], 10.0]))
    rmse = float(np.sqrt(np.mean(fit.fun ** 2)))
    return {"mu0": float(fit.x[0]), "gain": float(fit.x[1]), "rmse_hz": rmse,
            "rmse_rate": rmse * (hi - lo) / lam}


def lif_transfer(phi, fit, lam, *, noise=LIF_DEFAULTS["membrane_noise"], tau_mem=LIF_DEFAULTS["tau_mem"],
                 t_ref=LIF_DEFAULTS["t_ref"]):
    """The rate the fitted LIF neurons stand for, as a function of the synaptic current.

    ``r(x) = lo + (hi - lo) F(mu0 + gain x) / lambda``: what replaces ``phi``
    in the mean-field limit (infinitely many neurons per unit).
    """
    lo, hi = LIF_PHI[phi]
    d, f = _rate_table(float(noise), float(tau_mem) * 1e-3, float(t_ref) * 1e-3, n=1201)
    mu0, gain = float(fit["mu0"]), float(fit["gain"])
    return lambda x: lo + (hi - lo) * np.interp(mu0 + gain * x, d, f, left=f[0], right=f[-1]) / float(lam)


def mean_field_outputs(model, inputs, x0, transfer):
    """Outputs (T, B, O) of the exported rate network with ``phi`` replaced by ``transfer``.

    The Euler map of the rate network, ``x <- x + (dt/tau) (-x + W r(x) +
    W_in u + bias)``, with the readout ``y = W_out r(x) + b_out``. It is the
    LIF network without spike noise: its accuracy is the ceiling that the
    transfer-function mismatch alone leaves.
    """
    arr = model["arrays"]
    alpha = float(model["dt"]) / float(model["tau_m"])
    x = np.asarray(x0, dtype=np.float64).copy()
    out = np.empty(inputs.shape[:2] + (arr["W_out"].shape[0],))
    for t in range(inputs.shape[0]):
        x += alpha * (-x + transfer(x) @ arr["W"].T + inputs[t] @ arr["W_in"].T + arr["bias"])
        out[t] = transfer(x) @ arr["W_out"].T + arr["b_out"]
    return out


def search_lambda(network, params, task, model, *, grid=LAMBDA_GRID, trials=16, seed=0, codegen="numpy",
                  options=None, progress=None) -> dict:
    """Choose lambda on held-out search trials (see the module docstring for the rule).

    Parameters
    ----------
    network, params, task : the trained rate network and its task
    model : its exported model dict (:func:`bioplastic.export.brian2.to_brian2_model`)
    grid : lambda values (Hz) to try
    trials : number of search trials, drawn with ``numpy.random.default_rng(seed)``
    codegen : brian2 target
    options : LIF options over :data:`LIF_DEFAULTS` (``n_per_unit``, ``noise``, ...)
    progress : callable(str) or None, told about each lambda

    Returns
    -------
    dict with ``lam``, ``mu0``, ``gain`` (the choice), ``table`` (one row per
    lambda: fit, accuracy of the LIF network and of its mean-field limit,
    output RMSE against the rate network, mean rate), ``search_trials``,
    ``search_seed`` and ``rule``.
    """
    from .brian2_lif import simulate_lif

    grid = [float(v) for v in grid]
    if not grid or any(not v > 0 for v in grid):
        raise ConfigError(f"the lambda grid must hold positive rates (Hz), got {grid}")
    options = {k: v for k, v in dict(options or {}).items() if k not in ("lam", "mu0", "gain")}
    neuron = neuron_settings({**LIF_DEFAULTS, **options})
    batch = task.sample(int(trials), np.random.default_rng(seed))
    traj = network.forward(params, batch.inputs)
    x0 = network.initial_state(batch.batch_size)
    rows = []
    for lam in grid:
        if progress is not None:
            progress(f"lambda search: {lam:g} Hz")
        fit = fit_drive(traj.states, model["phi"], lam, **neuron)
        res = simulate_lif(model, batch.inputs, x0=x0, codegen=codegen,
                           **{**options, "lam": lam, "mu0": fit["mu0"], "gain": fit["gain"]})
        mf = mean_field_outputs(model, batch.inputs, x0, lif_transfer(model["phi"], fit, lam, **neuron))
        rows.append({"lam": lam, **fit, "accuracy": float(task.accuracy(res["outputs"], batch)),
                     "accuracy_mean_field": float(task.accuracy(mf, batch)),
                     "output_rmse": float(np.sqrt(np.mean((res["outputs"] - traj.outputs) ** 2))),
                     "mean_rate_hz": float(np.mean(res["neuron_rate_hz"]))})
    best = min(rows, key=lambda r: (-round(r["accuracy"], 9), r["output_rmse"], r["lam"]))
    return {"lam": best["lam"], "mu0": best["mu0"], "gain": best["gain"], "table": rows,
            "search_trials": int(trials), "search_seed": int(seed),
            "rate_accuracy": float(task.accuracy(traj.outputs, batch)),
            "rule": "highest accuracy on the search trials; ties: smaller output RMSE, then smaller lambda"}
