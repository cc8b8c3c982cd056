"""Rate units as populations of Poisson neurons in Brian2 (SPEC 8, spiking mode).

Needs only numpy and brian2 (the standalone script embeds this source).

Mapping from the rate network (LFRNN with a bounded nonlinearity ``phi``
with range ``[lo, hi]``: tanh ``[-1, 1]``, sigmoid ``[0, 1]``):

1. **Rates to spikes.** Unit i becomes a population P_i of ``M`` Poisson
   neurons. Each fires with the instantaneous rate
   ``nu_i(t) = nu_max (phi(s_i) - lo) / (hi - lo)`` (0 .. ``nu_max`` Hz), so
   rate ``lo`` is silence, ``hi`` is ``nu_max``, and tanh rate 0 is
   ``nu_max / 2``. In each step of ``dt_spike`` a neuron spikes with
   probability ``nu dt_spike`` (``threshold='rand() < nu*dt'``, kept <= 0.5),
   the discrete-time form of a Poisson process with rate ``nu``.
2. **Spikes to rates.** The population activity, filtered by an exponential
   synapse, ``tau_syn dA_j/dt = -A_j + (tau_syn / M) sum_{k in P_j} sum_spikes
   delta(t - t_k)`` (each spike adds ``1 / (M tau_syn)``), has mean ``nu_j``;
   the rate it encodes is ``r_hat_j = lo + (hi - lo) A_j / nu_max``.
3. **Weights.** Replacing ``r_j`` by ``r_hat_j`` in the rate equation gives
   ``tau ds_i/dt = -s_i + sum_j w_ij A_j + W_in u(t) + b_i + lo sum_j W_ij``
   with ``w_ij = (hi - lo) W_ij / nu_max`` (seconds): the synapse from every
   neuron of P_j onto every neuron of P_i has weight ``w_ij / M``. With this
   all-to-all connectivity every neuron of P_i receives the same input, so
   the input ``s_i`` is integrated once per population (a shared variable
   that the members read through a linked variable); that is exact for this
   connectivity and costs O(N M + N^2) synapses instead of O(N^2 M^2).
4. **Inputs** stay analog: the task input enters ``s_i`` as a current from a
   TimedArray (held over each rate-network step), as in the rate mode.
5. **Readout.** A second trace ``R_j`` of the same spikes with time constant
   ``tau_out`` gives ``r_hat_j`` for decoding, ``y = W_out r_hat + b_out``,
   sampled at the rate network's step times.
6. **Start.** ``s = x0`` and both traces start at the steady-state rate
   ``nu(x0)``, so there is no start-up transient.

The finite population is the only noise: the fluctuation of ``s_i`` has
variance of order ``|W_i|^2 / (M nu_max tau)``, so larger ``M`` and
``nu_max`` track the rate network more closely, and the filters ``tau_syn``
and ``tau_out`` add lags, small when they are short against ``tau``. Time:
one rate-network time unit is ``time_unit`` seconds (bioplastic's default
10 ms, so ``tau = 10`` is 100 ms, against ``tau_syn = 5`` ms); the spiking
network integrates with ``method='euler'`` at ``dt_spike`` (a divisor of
the rate ``dt``). Defaults: :data:`SPIKING_DEFAULTS`.
"""
from __future__ import annotations

import numpy as np

from .brian2_rate import (PHI_EXPR, _monitored_run, block_connections, check_model, check_run_arrays,
                          import_brian2, input_current_expr, input_timedarray, model_sizes, readout, set_codegen)

#: nonlinearity -> (lo, hi), the range mapped onto 0 .. nu_max
BOUNDED_PHI = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}
#: spiking options and their defaults (times in ms, rates in Hz)
SPIKING_DEFAULTS = {"n_per_pop": 100, "nu_max": 200.0, "tau_syn": 5.0, "tau_out": 10.0,
                    "dt_spike": 0.5, "seed": 0, "record_spikes": False}


def check_spiking_options(model, options):
    """Merge ``options`` into :data:`SPIKING_DEFAULTS` and check them."""
    unknown = sorted(set(options) - set(SPIKING_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown spiking option(s) {unknown}; known: {sorted(SPIKING_DEFAULTS)}")
    o = {**SPIKING_DEFAULTS, **options}
    if model["phi"] not in BOUNDED_PHI or not np.all(model["arrays"]["leak"] == 1.0):
        raise ValueError(f"spiking mode needs an LFRNN with a bounded nonlinearity {sorted(BOUNDED_PHI)}, "
                         f"got kind {model['kind']!r} with phi {model['phi']!r}")
    n = o["n_per_pop"]
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n_per_pop must be a positive integer, got {n!r}")
    for k in ("nu_max", "tau_syn", "tau_out", "dt_spike"):
        if not float(o[k]) > 0:
            raise ValueError(f"{k} must be > 0, got {o[k]!r}")
    check_spike_step(model, o["dt_spike"])
    if float(o["nu_max"]) * float(o["dt_spike"]) * 1e-3 > 0.5:
        raise ValueError(f"nu_max * dt_spike = {float(o['nu_max']) * float(o['dt_spike']) * 1e-3:.2f} is too "
                         "large for Bernoulli spiking per step (keep it below 0.5)")
    return o


def check_spike_step(model, dt_spike) -> None:
    """ValueError unless the spiking step ``dt_spike`` (ms) divides the rate network's step."""
    dt_ms = float(model["dt"]) * float(model["time_unit"]) * 1e3
    ratio = dt_ms / float(dt_spike)
    if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
        raise ValueError(f"dt_spike ({dt_spike} ms) must divide the rate network's step ({dt_ms} ms)")


def spiking_equations(model, timed_name="u_in"):
    """Equations of the population (input) variables and of the Poisson neurons."""
    _, I, _ = model_sizes(model)
    pops = "\n".join([
        "ds/dt = (-s + I_rec + I_in + bias)/tau_m : 1",
        "dA/dt = -A/tau_syn : Hz",
        "dR/dt = -R/tau_out : Hz",
        f"I_in = {input_current_expr(I, timed_name)} : 1",
        "I_rec : 1",
        "bias : 1 (constant)",
        "trial : integer (constant)",
    ] + [f"win_{k} : 1 (constant)" for k in range(I)])
    neurons = "\n".join([
        "s_pop : 1 (linked)",
        f"nu = nu_max * ({PHI_EXPR[model['phi']].format(x='s_pop')} - phi_lo) / (phi_hi - phi_lo) : Hz",
    ])
    return pops, neurons


def set_population_inputs(pops, model, n_trials, lo):
    """Trial index, input weights and bias of ``n_trials`` copies of the populations.

    The bias carries ``lo sum_j W_ij``: the rate a silent population stands for.
    """
    _, I, _ = model_sizes(model)
    arr = model["arrays"]
    N = arr["W"].shape[0]
    pops.trial = np.repeat(np.arange(n_trials), N)
    for k in range(I):
        setattr(pops, f"win_{k}", np.tile(arr["W_in"][:, k], n_trials))
    pops.bias = np.tile(arr["bias"] + lo * arr["W"].sum(axis=1), n_trials)


def population_synapses(b2, neurons, pops, W, n_trials, scale, clock, namespace, prefix):
    """The two synapse groups of a spiking population network.

    ``fan_in``: each neuron's spike adds ``1/(M tau)`` to its population's
    filtered spike trains ``A`` (``tau_syn``) and ``R`` (``tau_out``);
    ``coupling``: the summed current ``I_rec_i = sum_j scale W_ij A_j`` between
    the populations of each trial (weights in seconds, ``A`` in Hz).
    """
    fan_in = b2.Synapses(neurons, pops, on_pre="A_post += 1/(M*tau_syn)\nR_post += 1/(M*tau_out)",
                         clock=clock, namespace=namespace, name=f"{prefix}fan_in*")
    fan_in.connect(j="i // M")
    pre, post, w = block_connections(W, n_trials)
    coupling = b2.Synapses(pops, pops, "w : second (constant)\nI_rec_post = w * A_pre : 1 (summed)",
                           clock=clock, name=f"{prefix}coupling*")
    coupling.connect(i=pre, j=post)
    coupling.w_ = scale * w
    return fan_in, coupling


def build_spiking_network(b2, model, inputs, x0, options):
    """Brian2 objects of the spiking mode for ``B`` trials.

    Returns (Network, pops, neurons, state monitor, spike monitor or None);
    population index ``b * N + i``, neuron index ``(b * N + i) * M + k``.
    """
    N, I, _ = model_sizes(model)
    T, B, _ = inputs.shape
    arr = model["arrays"]
    M = int(options["n_per_pop"])
    ms = 1e-3 * b2.second
    unit = float(model["time_unit"])
    dt_rate = float(model["dt"]) * unit
    lo, hi = BOUNDED_PHI[model["phi"]]
    nu_max = float(options["nu_max"]) * b2.Hz
    namespace = {"u_in": input_timedarray(b2, inputs, dt_rate, "u_in"),
                 "tau_m": float(model["tau_m"]) * unit * b2.second,
                 "tau_syn": float(options["tau_syn"]) * ms, "tau_out": float(options["tau_out"]) * ms,
                 "nu_max": nu_max, "phi_lo": lo, "phi_hi": hi, "M": M}
    fast = b2.Clock(dt=float(options["dt_spike"]) * ms, name="spike_clock*")
    slow = b2.Clock(dt=dt_rate * b2.second, name="rate_clock*")
    pop_eqs, neuron_eqs = spiking_equations(model, "u_in")
    pops = b2.NeuronGroup(B * N, pop_eqs, method="euler", clock=fast, namespace=namespace, name="pops*")
    set_population_inputs(pops, model, B, lo)
    pops.s = x0.reshape(-1)
    neurons = b2.NeuronGroup(B * N * M, neuron_eqs, threshold="rand() < nu*dt", clock=fast,
                             namespace=namespace, name="poisson*")
    neurons.s_pop = b2.linked_var(pops, "s", index=np.repeat(np.arange(B * N), M))
    nu0 = np.asarray(neurons.nu_).reshape(B * N, M)[:, 0]  # rates at x0: start at the steady state
    pops.A_ = nu0
    pops.R_ = nu0
    fan_in, coupling = population_synapses(b2, neurons, pops, arr["W"], B, (hi - lo) / float(options["nu_max"]),
                                           fast, namespace, "")
    state_mon = b2.StateMonitor(pops, ["s", "R"], record=True, when="start", clock=slow, name="pop_monitor*")
    objects = [pops, neurons, fan_in, coupling, state_mon]
    spike_mon = None
    if options["record_spikes"]:
        spike_mon = b2.SpikeMonitor(neurons[:N * M], name="spikes*")  # trial 0 only
        objects.append(spike_mon)
    return b2.Network(*objects), pops, neurons, state_mon, spike_mon


def simulate_spiking(model, inputs, x0=None, codegen="numpy", **options):
    """Run the spiking mode in Brian2; returns population rates and decoded outputs.

    Parameters
    ----------
    model : exported model dict (LFRNN with tanh or sigmoid)
    inputs : (T, B, I) array
    x0 : (B, N) initial population inputs or None (zeros)
    codegen : {"numpy", "cython"} brian2 runtime target (global preference)
    **options : see :data:`SPIKING_DEFAULTS` (``n_per_pop`` M, ``nu_max`` Hz,
        ``tau_syn`` and ``tau_out`` ms, ``dt_spike`` ms, ``seed`` for brian2's
        random numbers, ``record_spikes`` for trial 0)

    Returns
    -------
    dict with ``states`` (T+1, B, N) population inputs s, ``rates`` (T+1, B, N)
    rate estimates ``r_hat`` from the readout trace, ``pop_rate_hz`` (T+1, B, N)
    the trace in Hz, ``outputs`` (T, B, O) decoded task output and, with
    ``record_spikes``, ``spike_i`` / ``spike_t`` (neuron index in trial 0,
    time in rate-network time units).
    """
    b2 = import_brian2()
    model = check_model(model)
    inputs, x0, _ = check_run_arrays(model, inputs, x0)
    o = check_spiking_options(model, options)
    set_codegen(b2, codegen)
    b2.seed(int(o["seed"]))
    N, _, _ = model_sizes(model)
    T, B, _ = inputs.shape
    net, pops, neurons, mon, spikes = build_spiking_network(b2, model, inputs, x0, o)
    dt_rate = float(model["dt"]) * float(model["time_unit"])
    rec = {v: a.reshape(T + 1, B, N) for v, a in _monitored_run(b2, net, mon, pops, ("s", "R"), T, dt_rate).items()}
    lo, hi = BOUNDED_PHI[model["phi"]]
    rates = lo + (hi - lo) * rec["R"] / float(o["nu_max"])
    out = {"states": rec["s"], "rates": rates, "pop_rate_hz": rec["R"],
           "outputs": readout(model, rates, rec["s"])}
    if spikes is not None:
        out["spike_i"] = np.asarray(spikes.i[:], dtype=np.int64)
        out["spike_t"] = np.asarray(spikes.t_[:]) / float(model["time_unit"])
    return out
