"""Rate networks as Brian2 equations (SPEC 8, rate mode). Needs only numpy and brian2.

This module (and :mod:`bioplastic.export.brian2_spiking`) imports nothing
from bioplastic: :mod:`bioplastic.export.brian2_script` copies its source
verbatim into the standalone script, so the library and the script run the
same code.

The exported model is a plain dict (see :func:`check_model`) in one form
shared by the LFRNN and the PLRNN. With ``s`` the state, ``r = phi(s)`` the
rate, ``u`` the input, in continuous time::

    tau_m ds_i/dt = -leak_i s_i + sum_j W_ij r_j + sum_k W_in_ik u_k(t) + bias_i + tau_m eta_i(t) / dt
    y = W_out a + b_out,   a = r or s (``readout_from``)

- LFRNN: ``leak = 1``, ``tau_m = tau``, ``bias = b``; the Euler step with the
  network's ``dt`` is ``s[t+1] = (1 - alpha) s[t] + alpha (W r[t] + W_in u[t] + b)``.
- PLRNN: ``leak = 1 - A``, ``tau_m = dt``, ``bias = h``, ``phi = relu``; the
  Euler step is ``z[t+1] = A z[t] + W relu(z[t]) + C u[t] + h``.
- ``eta[t]`` is the already scaled private noise (``sqrt(alpha) sigma xi[t]``)
  held for one step, so a noisy trial is reproduced too.

In Brian2 the recurrent term is a ``(summed)`` synaptic variable, the input a
2-D :class:`brian2.TimedArray` ``u(t, trial * I + k)`` (zero-order hold over
each step), and ``B`` trials run side by side as ``B`` disconnected copies
(neuron index ``b * N + i``). One time unit of the rate network is
``time_unit`` seconds (bioplastic's default 10 ms: ``dt = 1, tau = 10``
become 10 ms and 100 ms). Brian2 integrates with ``method='euler'`` at the
network's ``dt``, which is the same map as bioplastic's kernel up to
floating-point rounding (a few ulp per step). The linear readout has no
dynamics and is applied to the recorded activity with numpy. Activity is
recorded at the start of each step (``when='start'``) and the state after
the last step is appended, so index t is the state after t steps.
"""
from __future__ import annotations

import json
import sys

import numpy as np

MODEL_FORMAT = "bioplastic.brian2"
MODEL_VERSION = 1
#: Brian2 expressions of the nonlinearities of ``{x}`` (the functions of bioplastic's kernels).
PHI_EXPR = {
    "tanh": "tanh({x})",
    "relu": "clip({x}, 0, inf)",
    "softplus": "clip({x}, 0, inf) + log(1 + exp(-abs({x})))",
    "sigmoid": "1 / (1 + exp(-{x}))",
}
READOUTS = ("rates", "states")
ARRAYS = ("W", "W_in", "bias", "leak", "W_out", "b_out")
CODEGEN_TARGETS = ("numpy", "cython")

# ---------------------------------------------------------------------------
# importing brian2

#: The brian2 releases the export is tested with (the ``brian2`` extra pins them; docs/brian2.md).
BRIAN2_SUPPORTED = ">=2.5,<2.10"
_FIX = "pip install 'bioplastic[brian2]' (brian2 >=2.5,<2.10 with numpy <2.4)"


def _release(version) -> tuple:
    """The leading numbers of a version string: '2.10.0rc1' -> (2, 10, 0)."""
    out = []
    for part in str(version).split("."):
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        out.append(int(digits))
        if len(digits) < len(part):  # a suffix such as 'rc1' or '+local' ends the release
            break
    return tuple(out)


def brian2_support(brian2_version, numpy_version):
    """Why this brian2 cannot run under this numpy, or None when it can.

    brian2 up to 2.9 reads ``numpy.ndarray.ptp`` while defining its Quantity
    class, and numpy 2.4 removed that method, so ``import brian2`` fails
    with an AttributeError (fixed upstream in brian-team/brian2#1705, not
    released in 2.9). A pure function of the two version strings, so that
    it can be tested without installing either.

    Parameters
    ----------
    brian2_version, numpy_version : str
        Version strings as in ``brian2.__version__`` and ``numpy.__version__``.

    Returns
    -------
    str or None
        The problem and its fix, naming both versions; None when the pair is
        not known to be broken.

    Examples
    --------
    >>> brian2_support("2.9.0", "2.3.5") is None
    True
    >>> print(brian2_support("2.9.0", "2.4.1").split(";")[0])
    brian2 2.9.0 does not import under numpy 2.4.1 (numpy 2.4 removed ndarray.ptp, which brian2 < 2.10 uses)
    """
    b2, nv = _release(brian2_version), _release(numpy_version)
    if b2 and nv and b2 < (2, 10) and nv >= (2, 4):
        return (f"brian2 {brian2_version} does not import under numpy {numpy_version} (numpy 2.4 removed "
                f"ndarray.ptp, which brian2 < 2.10 uses); install supported versions: {_FIX}")
    return None


def _installed_version(dist):
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:  # importable, e.g. from a source tree, without metadata
        return None


def import_brian2():
    """Import and return the ``brian2`` module, checking it can run under this numpy.

    Brian2 is never patched: a known-incompatible pair of versions (see
    :func:`brian2_support`) is refused before the import, and any other
    failure while importing brian2 is re-raised naming both versions.

    Raises
    ------
    ImportError
        If brian2 is not installed (naming the extra that provides it), if
        the installed brian2 does not work with the installed numpy, or if
        ``import brian2`` fails for another reason; the message names the
        versions and the fix.
    """
    if "brian2" in sys.modules:
        return sys.modules["brian2"]
    import importlib.util

    if importlib.util.find_spec("brian2") is None:
        raise ImportError("brian2 is not installed; the Brian2 export needs it: "
                          "pip install 'bioplastic[brian2]' (or pip install brian2)")
    version = _installed_version("brian2")
    problem = brian2_support(version, np.__version__) if version else None
    if problem:
        raise ImportError(problem)
    try:
        import brian2
    except Exception as exc:  # brian2's own failure, whatever its type: name the versions and the fix
        raise ImportError(f"import brian2 failed with brian2 {version or '(version unknown)'} and numpy "
                          f"{np.__version__}: {type(exc).__name__}: {exc}; the Brian2 export supports brian2 "
                          f"{BRIAN2_SUPPORTED}: {_FIX}") from exc
    return brian2


def set_codegen(b2, codegen):
    """Set brian2's global code-generation target ('numpy' or 'cython')."""
    if codegen not in CODEGEN_TARGETS:
        raise ValueError(f"codegen must be one of {CODEGEN_TARGETS}, got {codegen!r}")
    b2.prefs.codegen.target = codegen


# ---------------------------------------------------------------------------
# the exported model: a plain dict


def check_model(model):
    """Check an exported model dict and return it with float64 arrays.

    Keys: ``format``, ``version``, ``kind`` ("lfrnn" or "plrnn"), ``phi``
    (a key of :data:`PHI_EXPR`), ``dt``, ``tau_m``, ``time_unit`` (seconds
    per rate-network time unit), ``readout_from`` ("rates" or "states") and
    ``arrays`` with ``W`` (N, N), ``W_in`` (N, I), ``bias`` (N,), ``leak``
    (N,), ``W_out`` (O, N), ``b_out`` (O,).

    Raises
    ------
    ValueError
        Naming the missing key or the array of the wrong shape.
    """
    missing = [k for k in ("format", "kind", "phi", "dt", "tau_m", "time_unit", "readout_from", "arrays")
               if k not in model]
    if missing:
        raise ValueError(f"exported model lacks {missing}")
    if model["format"] != MODEL_FORMAT:
        raise ValueError(f"not an exported bioplastic Brian2 model (format {model['format']!r})")
    if model["phi"] not in PHI_EXPR:
        raise ValueError(f"unknown nonlinearity {model['phi']!r}; known: {sorted(PHI_EXPR)}")
    if model["readout_from"] not in READOUTS:
        raise ValueError(f"readout_from must be one of {READOUTS}, got {model['readout_from']!r}")
    arrays = {k: np.asarray(model["arrays"][k], dtype=np.float64) for k in ARRAYS if k in model["arrays"]}
    missing = [k for k in ARRAYS if k not in arrays]
    if missing:
        raise ValueError(f"exported model lacks arrays {missing}")
    N, I = arrays["W_in"].shape
    O = arrays["W_out"].shape[0]
    want = {"W": (N, N), "W_in": (N, I), "bias": (N,), "leak": (N,), "W_out": (O, N), "b_out": (O,)}
    for k, shape in want.items():
        if arrays[k].shape != shape:
            raise ValueError(f"exported array {k!r} has shape {arrays[k].shape}, expected {shape}")
    for k in ("dt", "tau_m", "time_unit"):
        if not float(model[k]) > 0:
            raise ValueError(f"{k} must be > 0, got {model[k]!r}")
    return {**model, "arrays": arrays}


def model_sizes(model):
    """(N, I, O) of an exported model."""
    N, I = model["arrays"]["W_in"].shape
    return N, I, model["arrays"]["W_out"].shape[0]


def save_model(path, model, **extra_arrays):
    """Write ``model`` (and e.g. ``inputs``, ``x0``) to an ``.npz`` file.

    The scalar settings go into a JSON string ``meta``; arrays are stored as
    ``arr_<name>``; ``extra_arrays`` under their own names. Loadable with
    ``numpy.load(path)`` (no pickle).
    """
    model = check_model(model)
    meta = {k: v for k, v in model.items() if k != "arrays"}
    payload = {f"arr_{k}": v for k, v in model["arrays"].items()}
    payload.update({k: np.asarray(v) for k, v in extra_arrays.items() if v is not None})
    payload["meta"] = np.array(json.dumps(meta, sort_keys=True))
    with open(path, "wb") as fh:
        np.savez(fh, **payload)


def load_model(path):
    """Read an ``.npz`` written by :func:`save_model`: (model, dict of extra arrays)."""
    with np.load(path, allow_pickle=False) as data:
        if "meta" not in data.files:
            raise ValueError(f"{path!s} is not a bioplastic Brian2 weights file (no 'meta' entry)")
        meta = json.loads(str(data["meta"]))
        arrays = {k[4:]: data[k] for k in data.files if k.startswith("arr_")}
        extra = {k: data[k] for k in data.files if k != "meta" and not k.startswith("arr_")}
    return check_model({**meta, "arrays": arrays}), extra


def readout(model, rates, states):
    """y[t] = W_out a[t+1] + b_out for (T+1, B, N) activity; returns (T, B, O)."""
    a = rates if model["readout_from"] == "rates" else states
    arr = model["arrays"]
    return a[1:] @ arr["W_out"].T + arr["b_out"]


# ---------------------------------------------------------------------------
# building blocks shared with the spiking mode


def input_timedarray(b2, inputs, dt_seconds, name):
    """TimedArray ``name(t, b * I + k)`` holding ``inputs[t, b, k]`` (zero-order hold)."""
    T, B, I = inputs.shape
    return b2.TimedArray(np.ascontiguousarray(inputs, dtype=np.float64).reshape(T, B * I),
                         dt=dt_seconds * b2.second, name=name + "*")


def input_current_expr(n_inputs, timed_name):
    """``win_0*u(t, trial*I + 0) + ...``: the input term of the state equation."""
    terms = [f"win_{k}*{timed_name}(t, trial*{n_inputs} + {k})" for k in range(n_inputs)]
    return " + ".join(terms)


def block_connections(W, n_trials):
    """Indices and weights of ``n_trials`` disconnected copies of ``W`` (post, pre) = (i, j).

    Returns (pre, post, weight) for the nonzero entries, neuron index
    ``b * N + i``; Brian2's Synapses take ``i=pre, j=post``.
    """
    N = W.shape[0]
    post, pre = np.nonzero(W)
    w = W[post, pre]
    offs = (np.arange(n_trials) * N)[:, None]
    return ((pre[None] + offs).ravel(), (post[None] + offs).ravel(), np.tile(w, n_trials))


def _set_unit_params(group, model, n_trials, x0):
    N, I, _ = model_sizes(model)
    arr = model["arrays"]
    group.trial = np.repeat(np.arange(n_trials), N)
    for k in range(I):
        setattr(group, f"win_{k}", np.tile(arr["W_in"][:, k], n_trials))
    group.s = x0.reshape(-1)


def check_run_arrays(model, inputs, x0=None, noise=None):
    """Validate and cast ``inputs`` (T, B, I), ``x0`` (B, N) and ``noise`` (T, B, N)."""
    N, I, _ = model_sizes(model)
    inputs = np.asarray(inputs, dtype=np.float64)
    if inputs.ndim != 3 or inputs.shape[2] != I:
        raise ValueError(f"inputs must have shape (T, B, {I}), got {inputs.shape}")
    T, B, _ = inputs.shape
    x0 = np.zeros((B, N)) if x0 is None else np.asarray(x0, dtype=np.float64)
    if x0.shape != (B, N):
        raise ValueError(f"x0 must have shape ({B}, {N}), got {x0.shape}")
    if noise is not None:
        noise = np.asarray(noise, dtype=np.float64)
        if noise.shape != (T, B, N):
            raise ValueError(f"noise must have shape ({T}, {B}, {N}), got {noise.shape}")
    return inputs, x0, noise


def _monitored_run(b2, net, monitor, group, variables, n_steps, dt_seconds):
    """Run ``n_steps`` rate steps; return {var: (n_steps+1, n_neurons)} sampled at step starts."""
    net.run(n_steps * dt_seconds * b2.second)
    out = {}
    for v in variables:
        rec = np.asarray(getattr(monitor, v + "_"))  # (n_neurons, samples), recorded at 'start'
        if rec.shape[1] < n_steps:
            raise RuntimeError(f"brian2 recorded {rec.shape[1]} samples of {v!r}, expected {n_steps}")
        final = np.asarray(getattr(group, v + "_"))[None]
        out[v] = np.concatenate([rec.T[:n_steps], final], axis=0)
    return out


# ---------------------------------------------------------------------------
# rate mode


def rate_equations(model, timed_name="u_in", noise_name=None):
    """The Brian2 equations of the rate units (string), see the module docstring."""
    N, I, _ = model_sizes(model)
    noise = f" + tau_m*{noise_name}(t, i)/dt_rate" if noise_name else ""
    lines = [
        f"ds/dt = (-leak*s + I_rec + I_in + bias{noise})/tau_m : 1",
        f"r = {PHI_EXPR[model['phi']].format(x='s')} : 1",
        f"I_in = {input_current_expr(I, timed_name)} : 1",
        "I_rec : 1",
        "leak : 1 (constant)",
        "bias : 1 (constant)",
        "trial : integer (constant)",
    ]
    lines += [f"win_{k} : 1 (constant)" for k in range(I)]
    return "\n".join(lines)


def build_rate_network(b2, model, inputs, x0, noise=None):
    """Brian2 objects of the rate mode for ``B`` trials; returns (Network, group, monitor).

    Parameters
    ----------
    b2 : the brian2 module
    model : exported model dict (checked)
    inputs : (T, B, I) float64
    x0 : (B, N) initial states
    noise : (T, B, N) scaled noise eta or None
    """
    model = check_model(model)
    N, I, _ = model_sizes(model)
    T, B, _ = inputs.shape
    arr = model["arrays"]
    unit = float(model["time_unit"])
    dt_s = float(model["dt"]) * unit
    namespace = {"u_in": input_timedarray(b2, inputs, dt_s, "u_in"),
                 "tau_m": float(model["tau_m"]) * unit * b2.second, "dt_rate": dt_s * b2.second}
    noise_name = None
    if noise is not None:
        namespace["eta"] = b2.TimedArray(noise.reshape(T, B * N), dt=dt_s * b2.second)
        noise_name = "eta"
    clock = b2.Clock(dt=dt_s * b2.second, name="rate_clock*")
    units = b2.NeuronGroup(B * N, rate_equations(model, "u_in", noise_name), method="euler", clock=clock,
                           namespace=namespace, name="rate_units*")
    _set_unit_params(units, model, B, x0)
    units.leak = np.tile(arr["leak"], B)
    units.bias = np.tile(arr["bias"], B)
    pre, post, w = block_connections(arr["W"], B)
    syn = b2.Synapses(units, units, "w : 1 (constant)\nI_rec_post = w * r_pre : 1 (summed)", clock=clock,
                      name="recurrent*")
    syn.connect(i=pre, j=post)
    syn.w = w
    mon = b2.StateMonitor(units, ["s", "r"], record=True, when="start", clock=clock, name="rate_monitor*")
    net = b2.Network(units, syn, mon)
    return net, units, mon


def simulate_rate(model, inputs, x0=None, noise=None, codegen="numpy"):
    """Run the rate mode in Brian2 and return the trajectory, time-first.

    Parameters
    ----------
    model : exported model dict
    inputs : (T, B, I) array
    x0 : (B, N) initial state or None (zeros)
    noise : (T, B, N) scaled noise ``sqrt(alpha) sigma xi`` or None
    codegen : {"numpy", "cython"}
        brian2's runtime target (a global brian2 preference, set here).

    Returns
    -------
    dict with ``states`` and ``rates`` (T+1, B, N), index 0 the initial
    state, and ``outputs`` (T, B, O), as bioplastic's Trajectory.
    """
    b2 = import_brian2()
    model = check_model(model)
    inputs, x0, noise = check_run_arrays(model, inputs, x0, noise)
    set_codegen(b2, codegen)
    N, _, _ = model_sizes(model)
    T, B, _ = inputs.shape
    net, units, mon = build_rate_network(b2, model, inputs, x0, noise)
    rec = _monitored_run(b2, net, mon, units, ("s", "r"), T, float(model["dt"]) * float(model["time_unit"]))
    states = rec["s"].reshape(T + 1, B, N)
    rates = rec["r"].reshape(T + 1, B, N)
    return {"states": states, "rates": rates, "outputs": readout(model, rates, states)}
