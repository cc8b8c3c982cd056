"""What local rules need to know about a network: its *leaky form*.

The LFRNN, the rank-one RNN and the PLRNN all fit one update (see
:mod:`bioplastic.kernels.stp`)::

    x[t+1] = leak * x[t] + gain * ((W + S[t]) phi(x[t]) + W_in u[t] + b + p[t]) + noise[t]
    y[t]   = W_out a[t+1] + b_out + q[t],     a = phi(x) or x

where ``S`` is the TCR short-term plasticity term, ``p`` and ``q`` optional
perturbations of the input current and of the outputs (node perturbation).
:func:`leaky_form` maps a network's parameters to that form, :func:`simulate`
runs it with the numba kernels, and :func:`to_model_grads` maps gradients of
the form's arrays back to the model's parameters (chain rule of the rank-one
parametrisation). The LSTM has no leaky form: local rules reject it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, ShapeError
from ..kernels.activations import PHI_CODES
from ..kernels.stp import leaky_stp_forward
from ..networks.base import Trajectory, readout
from ..validation import as_array, expect_shape

#: Model kinds with a leaky form.
LEAKY_KINDS = ("lfrnn", "rank1", "plrnn")

#: Name of each form array in each model (None: the model has no such parameter).
_NAMES = {
    "lfrnn": {"W": "W", "W_in": "W_in", "b": "b", "W_out": "W_out", "b_out": "b_out", "leak": None},
    "rank1": {"W": None, "W_in": "W_in", "b": "b", "W_out": "W_out", "b_out": "b_out", "leak": None},
    "plrnn": {"W": "W", "W_in": "C", "b": "h", "W_out": "W_out", "b_out": "b_out", "leak": "A"},
}


@dataclass
class LeakyForm:
    """The arrays of one network in the leaky form (read-only views)."""

    W: np.ndarray        # (N, N) effective long-term recurrent weights
    W_in: np.ndarray     # (N, I)
    b: np.ndarray        # (N,)
    W_out: np.ndarray    # (O, N)
    b_out: np.ndarray    # (O,)
    leak: np.ndarray     # (N,)
    gain: float
    phi_code: int
    read_states: bool    # readout from x rather than phi(x)
    zero_diag: bool      # S keeps a zero diagonal (PLRNN)
    kind: str


def check_leaky(network, who: str) -> None:
    """Raise ConfigError unless ``network`` has a leaky form."""
    if network.kind not in LEAKY_KINDS:
        raise ConfigError(f"{who} needs a leaky rate network ({', '.join(LEAKY_KINDS)}); "
                          f"a {network.kind!r} network has no leaky form")


def leaky_form(network, params) -> LeakyForm:
    """Express ``params`` of ``network`` in the leaky form (ShapeError for misshaped ``params``)."""
    check_leaky(network, "this rule")
    network.check_param_shapes(params)
    N = network.n_units
    dt = network.dtype
    if network.kind == "plrnn":
        return LeakyForm(params["W"], params["C"], params["h"], params["W_out"], params["b_out"],
                         np.asarray(params["A"], dtype=dt), 1.0, PHI_CODES["relu"],
                         network.readout_from == "z", True, "plrnn")
    a = network.alpha
    return LeakyForm(network.recurrent_weights(params), params["W_in"], params["b"], params["W_out"],
                     params["b_out"], np.full(N, 1.0 - a, dtype=dt), a, PHI_CODES[network.nonlinearity],
                     False, False, network.kind)


def model_names(network) -> dict:
    """Map form array names to the model's parameter names (None if absent)."""
    return dict(_NAMES[network.kind])


def simulate(network, params, inputs, noise=None, *, stp=None, current=None, out_perturbation=None,
             x0=None) -> Trajectory:
    """Run ``network`` in its leaky form, optionally with STP and perturbations.

    Parameters
    ----------
    network, params : the model and its (checked) parameters
    inputs : (T, B, I) array
    noise : (T, B, N) standard-normal private noise or None
    stp : None or (eta_s, decay_s): run on ``W + S`` with TCR-STP (SPEC 4)
    current : (T, B, N) perturbation ``p`` added to the input current, or None
    out_perturbation : (T, B, O) perturbation ``q`` added to the outputs, or None
    x0 : (B, N) initial state or None (zeros)

    Returns
    -------
    Trajectory; with STP, ``extra["S_end"]`` holds the fast weights (B, N, N)
    after the last step.

    Raises
    ------
    ShapeError
        If an array does not fit the network's sizes or the inputs' (T, B).
    """
    if stp is None and current is None and out_perturbation is None:
        return network.forward(params, inputs, noise=noise, x0=x0)
    params, inputs, x0 = check_simulate_args(network, params, inputs, noise, current, out_perturbation, x0)
    if stp is not None and (not isinstance(stp, (tuple, list)) or len(stp) != 2):
        raise ConfigError(f"stp must be None or (eta_s, decay_s), got {stp!r}")
    if stp is None and hasattr(network, "run_with_additive"):
        return _perturbed_lfrnn(network, params, inputs, noise, current, out_perturbation, x0)
    f = leaky_form(network, params)
    T, B, _ = inputs.shape
    dtype = network.dtype
    drive = (inputs.reshape(T * B, -1) @ np.asarray(f.W_in).T).reshape(T, B, -1).astype(dtype, copy=False)
    drive += f.b
    if current is not None:
        drive += current  # drive is a fresh array: add in place
    scaled = scaled_noise(network, noise)
    x0 = network.initial_state(B) if x0 is None else x0
    eta_s, decay_s = stp if stp is not None else (0.0, 1.0)
    xs, rs, S_end = leaky_stp_forward(x0, drive, scaled, f.W, f.leak, f.gain, f.phi_code, eta_s=eta_s,
                                      decay_s=decay_s, zero_diag=f.zero_diag, stp=stp is not None)
    read = xs if f.read_states else rs
    y = readout(read[1:], f.W_out, f.b_out)
    if out_perturbation is not None:
        y = y + out_perturbation
    extra = {} if S_end is None else {"S_end": S_end}
    return Trajectory(xs, rs, y, extra)


def check_simulate_args(network, params, inputs, noise, current, out_perturbation, x0):
    """(params, inputs, x0) of :func:`simulate` cast to the network's dtype,
    with every array checked against the network's sizes and the inputs' (T, B)."""
    params = network.check_params(params, finite=False)  # the kernels find non-finite weights
    inputs = network.check_inputs(inputs)
    T, B, _ = inputs.shape
    N, O = network.n_units, network.n_outputs
    for name, arr, shape, what in (("noise", noise, (T, B, N), "(T, B, n_units)"),
                                   ("current", current, (T, B, N), "(T, B, n_units)"),
                                   ("out_perturbation", out_perturbation, (T, B, O), "(T, B, n_outputs)")):
        if arr is not None:
            expect_shape(name, arr, shape, what + " of the inputs")
    if x0 is not None:
        x0 = as_array("x0", x0, network.dtype, shape=(B, N), what="(B, n_units) of the inputs")
    return params, inputs, x0


def _perturbed_lfrnn(network, params, inputs, noise, current, out_perturbation, x0) -> Trajectory:
    """LFRNN / rank-one forward pass with perturbations, on the network's own
    (block-parallel, fused) kernels rather than the STP kernel."""
    B = inputs.shape[1]
    dtype = network.dtype
    x0 = network.initial_state(B) if x0 is None else x0
    a = network.alpha
    # x[t+1] = (1-a) x + a (... + p[t]) + sqrt(a) sigma xi[t]  =  ... + a (p[t] + sigma xi[t] / sqrt(a))
    additive = None
    if current is not None:
        additive = np.array(current, dtype=dtype)  # a fresh array: add in place
    scaled = scaled_noise(network, noise)
    if scaled is not None:
        scaled /= dtype.type(a)
        additive = scaled if additive is None else additive + scaled
    traj = network.run_with_additive(params, np.asarray(inputs, dtype=dtype), additive, a, x0)
    if out_perturbation is not None:
        traj.outputs += out_perturbation
    return traj


def scaled_noise(network, noise):
    """The noise term the Euler step adds, ``sqrt(alpha) sigma xi`` (None without noise)."""
    if noise is None or network.noise_std == 0:
        return None
    dtype = network.dtype
    return np.asarray(noise, dtype=dtype) * dtype.type(np.sqrt(network.alpha) * network.noise_std)


def readout_activity(network, traj) -> np.ndarray:
    """What the readout reads, (T+1, B, N): states for a PLRNN reading z, else rates."""
    if not isinstance(traj, Trajectory):
        raise ShapeError(f"traj must be a Trajectory, got {type(traj).__name__}")
    if network.kind == "plrnn" and network.readout_from == "z":
        return traj.states
    return traj.rates


def to_model_grads(network, params, form_grads: dict) -> dict:
    """Map gradients of the form's arrays (``W``, ``W_in``, ``b``, ``W_out``,
    ``b_out``, ``leak``) to the model's parameter names.

    The rank-one RNN's ``W = g chi + m n^T / N`` goes through the network's
    own chain rule (``dm = dW n / N``, ``dn = dW^T m / N``, ``dchi = g dW``).
    """
    names = model_names(network)
    N, I, O = network.n_units, network.n_inputs, network.n_outputs
    shapes = {"W": (N, N), "W_in": (N, I), "b": (N,), "W_out": (O, N), "b_out": (O,), "leak": (N,)}
    whats = {"W": "(N, N)", "W_in": "(N, I)", "b": "(N,)", "W_out": "(O, N)", "b_out": "(O,)", "leak": "(N,)"}
    out = {}
    for k, g in form_grads.items():
        if g is None:
            continue
        if k in shapes:
            expect_shape(f"form_grads[{k!r}]", g, shapes[k], whats[k] + " of the leaky form")
        if k == "W" and network.kind == "rank1":
            # the network's own chain rule; the other entries are placeholders
            full = {n: np.zeros_like(params[n]) for n in ("W_in", "b", "W_out", "b_out")}
            full["W"] = g
            chained = network._finish_grads(params, full)
            out.update({n: chained[n] for n in ("chi", "m", "n")})
            continue
        name = names.get(k)
        if name is not None:
            out[name] = g
    return out
