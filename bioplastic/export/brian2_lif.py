"""Trained rate networks as networks of leaky integrate-and-fire neurons (SPEC 8, LIF mode).

Needs only numpy and brian2 (the standalone script embeds this source).

The conversion follows the transfer method of Kim, Li & Sejnowski (2019,
PNAS 116:22811): the trained recurrent weights are carried into a network
of LIF neurons with exponentially decaying synaptic currents, and one
scaling factor ``lambda`` relates rate-network activity to spike rates. The
equations below are this project's reconstruction of that method for a
leaky rate network with a bounded nonlinearity ``phi`` of range
``[lo, hi]`` (tanh ``[-1, 1]``, sigmoid ``[0, 1]``); where it departs from
the paper it says so.

Rate network (LFRNN): ``tau dx_i/dt = -x_i + sum_j W_ij phi(x_j) + W_in u + b_i``.

Spiking network, for rate unit i a population P_i of ``M`` LIF neurons
(``M = 1``: one neuron per unit, as in the paper):

1. **Synaptic current.** Every spike of a neuron of P_j adds
   ``(hi - lo) W_ij / (lambda M tau)`` to the synaptic current ``x_i`` of
   population i, which decays with the rate network's ``tau``::

       tau dx_i/dt = -x_i + W_in u(t) + b_i + lo sum_j W_ij
                     + ((hi - lo) / lambda) sum_j W_ij (1/M) sum_{k in P_j} sum_spikes delta(t - t_k)

   The spikes' population rate ``nu_j`` (Hz) thus stands for the rate
   ``r_j = lo + (hi - lo) nu_j / lambda``: ``lambda`` is the firing rate
   (Hz) that stands for the top of ``phi``'s range and silence for its
   bottom. With ``nu_j = lambda (phi(x_j) - lo) / (hi - lo)`` this is the
   rate equation exactly. Dividing the weights by ``lambda`` is the paper's
   ``W_spk = W_rate / lambda``; the offset ``lo sum_j W_ij`` (zero for the
   sigmoid) lets a tanh unit's negative rates be carried by firing below
   ``lambda / 2``. The weights are divided among the ``M`` neurons of a
   population (each spike counts ``1/M``); since every neuron of P_i then
   receives the same current, ``x_i`` is integrated once per population and
   read by its neurons through a linked variable (exact for this
   connectivity; O(N M + N^2) synapses instead of O(N^2 M^2)).
2. **Neurons.** Each neuron is a LIF neuron with membrane time constant
   ``tau_mem``, threshold 1 and reset 0 (the membrane potential in units of
   the rest-to-threshold distance), refractory period ``t_ref`` and
   independent white membrane noise of standard deviation ``membrane_noise``
   (``noise`` below)::

       tau_mem dv/dt = -v + mu0 + gain x_i + noise sqrt(2 tau_mem) xi(t)

   The affine map ``mu0 + gain x`` from synaptic current to membrane drive
   is fitted (at export time, by :mod:`bioplastic.export.lif_transfer`) so
   that the neuron's stationary rate ``F(mu0 + gain x)`` (the Siegert
   formula for a noisy LIF neuron) matches ``lambda (phi(x) - lo) / (hi -
   lo)`` over the currents the trained network visits; ``lambda`` itself is
   chosen by a search on held-out trials. In the paper the LIF neurons get
   the spiking currents directly and ``lambda`` alone absorbs the
   mismatch of the transfer functions; fitting ``mu0`` and ``gain`` is this
   project's addition, so that ``lambda`` keeps its meaning as a rate.
3. **Readout.** The spike trains of P_j filtered with ``tau_out`` give the
   rate estimate ``r_hat_j = lo + (hi - lo) R_j / lambda`` and the output
   ``y = W_out r_hat + b_out``, sampled at the rate network's step times.
4. **Inputs** enter the synaptic current as analog currents (a TimedArray
   held over each rate-network step), as in the rate and spiking modes.
5. **Start.** ``x = x0``, the filtered spike trains start at the stationary
   rates ``F(mu0 + gain x0)``, and the membrane potentials uniformly in
   ``[0, 1)`` (no synchronous first volley).

Time: one rate-network time unit is ``time_unit`` seconds (default 10 ms:
``tau = 10`` is 100 ms, the synaptic decay time); the LIF network
integrates with ``method='euler'`` at ``dt_spike`` ms (a divisor of the
rate step). Defaults: :data:`LIF_DEFAULTS`.
"""
from __future__ import annotations

import numpy as np

from .brian2_rate import (_monitored_run, check_model, check_run_arrays, import_brian2, input_current_expr,
                          input_timedarray, model_sizes, readout, set_codegen)
from .brian2_spiking import check_spike_step, population_synapses, set_population_inputs

#: nonlinearity -> (lo, hi), the range carried by 0 .. lambda Hz
LIF_PHI = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}
#: LIF options and their defaults (times in ms, rates in Hz). ``lam``,
#: ``mu0`` and ``gain`` have no default: the export fits them
#: (:func:`bioplastic.export.lif_transfer.convert`).
LIF_DEFAULTS = {"n_per_unit": 1, "tau_mem": 10.0, "t_ref": 2.0, "membrane_noise": 0.3, "tau_out": 20.0,
                "dt_spike": 0.1, "seed": 0, "record_spikes": False}
LIF_FITTED = ("lam", "mu0", "gain")


def check_lif_options(model, options):
    """Merge ``options`` into :data:`LIF_DEFAULTS` and check them (``lam``, ``mu0``, ``gain`` required)."""
    known = set(LIF_DEFAULTS) | set(LIF_FITTED)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown LIF option(s) {unknown}; known: {sorted(known)}")
    missing = [k for k in LIF_FITTED if options.get(k) is None]
    if missing:
        raise ValueError(f"LIF mode needs the fitted {missing} (bioplastic.export.lif_transfer.convert "
                         "finds them; the export stores them in the weights file)")
    o = {**LIF_DEFAULTS, **options}
    if model["phi"] not in LIF_PHI or not np.all(model["arrays"]["leak"] == 1.0):
        raise ValueError(f"LIF mode needs an LFRNN or rank-one RNN with a bounded nonlinearity "
                         f"{sorted(LIF_PHI)}, got kind {model['kind']!r} with phi {model['phi']!r}")
    n = o["n_per_unit"]
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n_per_unit must be a positive integer, got {n!r}")
    for k in ("lam", "tau_mem", "tau_out", "dt_spike", "gain"):
        if not float(o[k]) > 0:
            raise ValueError(f"{k} must be > 0, got {o[k]!r}")
    for k in ("t_ref", "membrane_noise"):
        if not float(o[k]) >= 0:
            raise ValueError(f"{k} must be >= 0, got {o[k]!r}")
    if not np.isfinite(float(o["mu0"])):
        raise ValueError(f"mu0 must be finite, got {o['mu0']!r}")
    check_spike_step(model, o["dt_spike"])
    if float(o["dt_spike"]) > 0.1 * float(o["tau_mem"]):
        raise ValueError(f"dt_spike ({o['dt_spike']} ms) must be at most tau_mem/10 ({o['tau_mem']} ms / 10) "
                         "for the Euler step of the membrane")
    return o


def lif_equations(model, timed_name="u_in"):
    """Equations of the populations' synaptic currents and of the LIF neurons."""
    _, I, _ = model_sizes(model)
    pops = "\n".join([
        "dy/dt = (-y + I_in + bias)/tau_syn : 1",  # input part of the synaptic current
        "dA/dt = -A/tau_syn : Hz",                 # spike trains filtered by the synapse
        "dR/dt = -R/tau_out : Hz",                 # ... and by the readout filter
        "x = y + I_rec : 1",                        # total synaptic current
        f"I_in = {input_current_expr(I, timed_name)} : 1",
        "I_rec : 1",
        "bias : 1 (constant)",
        "trial : integer (constant)",
    ] + [f"win_{k} : 1 (constant)" for k in range(I)])
    neurons = "\n".join([
        "dv/dt = (-v + mu0 + gain*(y_pop + rec_pop))/tau_mem + noise*sqrt(2/tau_mem)*xi : 1 (unless refractory)",
        "y_pop : 1 (linked)",
        "rec_pop : 1 (linked)",
    ])
    return pops, neurons


def stationary_rate_hz(drive, noise, tau_mem_s, t_ref_s, n_grid=400):
    """Siegert rate (Hz) of the LIF neuron (threshold 1, reset 0) for constant ``drive``.

    ``1/nu = t_ref + tau_mem sqrt(pi) int_{-drive/sigma}^{(1-drive)/sigma} e^{u^2} (1 + erf u) du``
    with ``sigma = sqrt(2) noise`` (Brunel 2000, diffusion approximation;
    ``noise`` is the standard deviation of the free membrane potential). numpy only (used to start the
    filtered spike trains at their stationary value); the export's fit uses
    the same formula with scipy (:mod:`bioplastic.export.lif_transfer`).
    """
    drive = np.asarray(drive, dtype=np.float64)
    if noise <= 0:
        with np.errstate(divide="ignore"):
            isi = np.where(drive > 1, t_ref_s + tau_mem_s * np.log(drive / np.maximum(drive - 1, 1e-300)),
                           np.inf)
        return 1.0 / isi
    sigma = np.sqrt(2.0) * noise
    lo_u = -drive / sigma
    hi_u = (1.0 - drive) / sigma
    g = np.linspace(0.0, 1.0, n_grid)
    u = lo_u[..., None] + (hi_u - lo_u)[..., None] * g
    integrand = _erfcx(-u)  # e^{u^2} (1 + erf u), without the cancellation of 1 + erf u
    integral = np.trapezoid(integrand, g, axis=-1) * (hi_u - lo_u)
    return 1.0 / (t_ref_s + tau_mem_s * np.sqrt(np.pi) * integral)


def _erfcx(z):
    """Scaled complementary error function ``e^{z^2} erfc(z)`` (numpy and math only)."""
    from math import erfc

    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    big = z > 25.0  # erfc underflows: asymptotic series, relative error < 1e-9
    zb = z[big]
    out[big] = (1.0 - 0.5 / zb**2 + 0.75 / zb**4) / (zb * np.sqrt(np.pi))
    small = ~big
    zs = z[small]
    with np.errstate(over="ignore"):
        out[small] = np.exp(np.minimum(zs * zs, 700.0)) * np.vectorize(erfc)(zs)
    return out


def build_lif_network(b2, model, inputs, x0, options):
    """Brian2 objects of the LIF mode for ``B`` trials.

    Returns (Network, pops, neurons, state monitor, spike monitor); population
    index ``b * N + i``, neuron index ``(b * N + i) * M + k``.
    """
    N, I, _ = model_sizes(model)
    T, B, _ = inputs.shape
    arr = model["arrays"]
    M = int(options["n_per_unit"])
    ms = 1e-3 * b2.second
    unit = float(model["time_unit"])
    dt_rate = float(model["dt"]) * unit
    tau_syn = float(model["tau_m"]) * unit
    lo, hi = LIF_PHI[model["phi"]]
    lam = float(options["lam"])
    namespace = {"u_in": input_timedarray(b2, inputs, dt_rate, "u_in"),
                 "tau_syn": tau_syn * b2.second, "tau_out": float(options["tau_out"]) * ms,
                 "tau_mem": float(options["tau_mem"]) * ms, "noise": float(options["membrane_noise"]),
                 "mu0": float(options["mu0"]), "gain": float(options["gain"]), "M": M}
    clock = b2.Clock(dt=float(options["dt_spike"]) * ms, name="spike_clock*")
    slow = b2.Clock(dt=dt_rate * b2.second, name="rate_clock*")
    pop_eqs, neuron_eqs = lif_equations(model, "u_in")
    pops = b2.NeuronGroup(B * N, pop_eqs, method="euler", clock=clock, namespace=namespace, name="lif_pops*")
    set_population_inputs(pops, model, B, lo)
    # start at the stationary rates of x0: x(0) = x0 with A = R = F(mu0 + gain x0)
    x0 = np.asarray(x0, dtype=np.float64)
    nu0 = stationary_rate_hz(float(options["mu0"]) + float(options["gain"]) * x0, float(options["membrane_noise"]),
                             float(options["tau_mem"]) * 1e-3, float(options["t_ref"]) * 1e-3)
    r0 = lo + (hi - lo) * nu0 / lam
    pops.A_ = nu0.reshape(-1)
    pops.R_ = nu0.reshape(-1)
    rec0 = (r0 - lo) @ arr["W"].T  # the summed recurrent current at the start, (hi - lo) W A0 / lambda
    pops.y = (x0 - rec0).reshape(-1)
    pops.I_rec = rec0.reshape(-1)  # recomputed every step; set so that x(0) = x0 is also what is recorded
    neurons = b2.NeuronGroup(B * N * M, neuron_eqs, threshold="v > 1", reset="v = 0",
                             refractory=float(options["t_ref"]) * ms, method="euler", clock=clock,
                             namespace=namespace, name="lif*")
    members = np.repeat(np.arange(B * N), M)
    neurons.y_pop = b2.linked_var(pops, "y", index=members)
    neurons.rec_pop = b2.linked_var(pops, "I_rec", index=members)
    neurons.v = np.random.default_rng(int(options["seed"])).random(B * N * M)
    fan_in, coupling = population_synapses(b2, neurons, pops, arr["W"], B, (hi - lo) / lam, clock, namespace,
                                           "lif_")
    state_mon = b2.StateMonitor(pops, ["x", "R"], record=True, when="start", clock=slow, name="lif_monitor*")
    spike_mon = b2.SpikeMonitor(neurons, name="lif_spikes*")
    net = b2.Network(pops, neurons, fan_in, coupling, state_mon, spike_mon)
    return net, pops, neurons, state_mon, spike_mon


def spike_statistics(spike_i, spike_t_s, n_neurons, duration_s, min_spikes=3):
    """Per-neuron mean rate (Hz) and coefficient of variation of the inter-spike intervals.

    ``CV = std(ISI) / mean(ISI)``, NaN for neurons with fewer than
    ``min_spikes`` spikes (so at least two intervals).
    """
    spike_i = np.asarray(spike_i, dtype=np.int64)
    spike_t_s = np.asarray(spike_t_s, dtype=np.float64)
    counts = np.bincount(spike_i, minlength=n_neurons)
    rates = counts / float(duration_s)
    cv = np.full(n_neurons, np.nan)
    order = np.lexsort((spike_t_s, spike_i))
    st = spike_t_s[order]
    starts = np.concatenate([[0], np.cumsum(counts)])
    for n in np.nonzero(counts >= min_spikes)[0]:
        isi = np.diff(st[starts[n]:starts[n + 1]])
        m = isi.mean()
        cv[n] = isi.std() / m if m > 0 else np.nan
    return rates, cv


def simulate_lif(model, inputs, x0=None, codegen="numpy", **options):
    """Run the LIF mode in Brian2; returns currents, rate estimates, outputs and spike statistics.

    Parameters
    ----------
    model : exported model dict (LFRNN or rank-one RNN with tanh or sigmoid)
    inputs : (T, B, I) array
    x0 : (B, N) initial synaptic currents (the rate network's initial state) or None
    codegen : {"numpy", "cython"} brian2 runtime target (global preference)
    **options : ``lam`` (Hz), ``mu0``, ``gain`` (fitted at export) and the
        options of :data:`LIF_DEFAULTS`

    Returns
    -------
    dict with ``states`` (T+1, B, N) synaptic currents x, ``rates`` (T+1, B, N)
    rate estimates ``r_hat`` from the readout filter, ``pop_rate_hz`` the
    filtered population rate, ``outputs`` (T, B, O), ``neuron_rate_hz`` and
    ``isi_cv`` per neuron (index ``(b N + i) M + k``) and, with
    ``record_spikes``, ``spike_i`` / ``spike_t`` of trial 0 (neuron index
    ``i M + k``, time in rate-network time units).
    """
    b2 = import_brian2()
    model = check_model(model)
    inputs, x0, _ = check_run_arrays(model, inputs, x0)
    o = check_lif_options(model, options)
    set_codegen(b2, codegen)
    b2.seed(int(o["seed"]))
    N, _, _ = model_sizes(model)
    T, B, _ = inputs.shape
    M = int(o["n_per_unit"])
    net, pops, neurons, mon, spikes = build_lif_network(b2, model, inputs, x0, o)
    dt_rate = float(model["dt"]) * float(model["time_unit"])
    rec = {v: a.reshape(T + 1, B, N) for v, a in _monitored_run(b2, net, mon, pops, ("x", "R"), T, dt_rate).items()}
    lo, hi = LIF_PHI[model["phi"]]
    rates = lo + (hi - lo) * rec["R"] / float(o["lam"])
    spike_i = np.asarray(spikes.i[:], dtype=np.int64)
    spike_t = np.asarray(spikes.t_[:], dtype=np.float64)
    neuron_rate, cv = spike_statistics(spike_i, spike_t, B * N * M, T * dt_rate)
    out = {"states": rec["x"], "rates": rates, "pop_rate_hz": rec["R"],
           "outputs": readout(model, rates, rec["x"]), "neuron_rate_hz": neuron_rate, "isi_cv": cv}
    if o["record_spikes"]:
        first = spike_i < N * M
        out["spike_i"] = spike_i[first]
        out["spike_t"] = spike_t[first] / float(model["time_unit"])
    return out
