"""The benchmark's cases and the network, batch and training step each one times.

A case is a network size ``(N, B, T)`` and a dtype. Every case times the
same tanh LFRNN (I = 3 inputs, O = 3 outputs, g = 1.5, tau = 10, dt = 1) on
random inputs and targets with a full loss mask; one training iteration is
forward, masked MSE plus TCR on the rates (lambda = 0.1), the adjoint
backward pass, clipping to global norm 1 and an Adam step.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from ..errors import ConfigError
from ..networks.lfrnn import LFRNN
from ..training.objective import loss_and_grads
from ..training.optim import clip_by_global_norm

#: Keys of every benchmark record, in order.
RECORD_KEYS = ("case", "what", "bioplastic_ms", "torch_ms", "ratio", "torch_module_ms", "ratio_module")
#: Fixed settings of every case.
N_INPUTS = 3
N_OUTPUTS = 3
LAMBDA_TCR = 0.1
MAX_NORM = 1.0
LR = 1e-3
GAIN = 1.5
TAU = 10.0
DT = 1.0


@dataclass(frozen=True)
class Case:
    """One benchmark case: sizes, dtype and how often to repeat it.

    Parameters
    ----------
    n_units, batch_size, n_steps : int
        N, B and T.
    dtype : {"float64", "float32"}
    repeats : int or None
        Timed repeats (None: chosen from the size, see :func:`default_repeats`).
    """

    n_units: int
    batch_size: int
    n_steps: int
    dtype: str = "float64"
    repeats: int | None = None

    @property
    def name(self) -> str:
        return f"N={self.n_units} B={self.batch_size} T={self.n_steps} {self.dtype}"


SIZES = ((100, 32, 100), (256, 64, 200), (512, 128, 200))
DTYPES = ("float32", "float64")
#: The full benchmark.
DEFAULT_CASES = tuple(Case(N, B, T, dt) for (N, B, T) in SIZES for dt in DTYPES)
#: ``--quick``: a tiny run that still exercises every code path.
QUICK_CASES = tuple(Case(32, 8, 20, dt) for dt in DTYPES)
QUICK_REPEATS = 3


def default_repeats(case: Case) -> int:
    """Timed repeats of a case: 20 for small work, fewer for big work."""
    work = case.n_units ** 2 * case.batch_size * case.n_steps
    if work <= 100 ** 2 * 32 * 100:
        return 20
    if work <= 256 ** 2 * 64 * 200:
        return 10
    return 5


def _as_case(c) -> Case:
    if isinstance(c, Case):
        return c
    if isinstance(c, dict):
        return Case(**c)
    if isinstance(c, (tuple, list)) and len(c) in (3, 4, 5):
        return Case(*c)
    raise ConfigError(f"a benchmark case is a Case, a dict or a tuple (N, B, T[, dtype]); got {c!r}")


def setup_case(case: Case, seed: int = 0):
    rng = np.random.default_rng(seed)
    net = LFRNN(case.n_units, N_INPUTS, N_OUTPUTS, g=GAIN, nonlinearity="tanh", dt=DT, tau=TAU,
                dtype=case.dtype)
    params = net.init_params(rng)
    # Small non-zero biases so every parameter's gradient path is exercised.
    params["b"] = (0.1 * rng.standard_normal(case.n_units)).astype(net.dtype)
    params["b_out"] = (0.1 * rng.standard_normal(N_OUTPUTS)).astype(net.dtype)
    T, B = case.n_steps, case.batch_size
    batch = SimpleNamespace(
        inputs=rng.standard_normal((T, B, N_INPUTS)).astype(net.dtype),
        targets=rng.standard_normal((T, B, N_OUTPUTS)).astype(net.dtype),
        loss_mask=np.ones((T, B, N_OUTPUTS), dtype=net.dtype),
        epochs={},
    )
    return net, params, batch


def bioplastic_step(net, params, batch, opt, lambda_tcr=LAMBDA_TCR, max_norm=MAX_NORM):
    """One bioplastic BPTT iteration: loss_and_grads, clipping, Adam."""
    ev = loss_and_grads(net, params, batch, lambda_tcr=lambda_tcr)
    grads, _ = clip_by_global_norm(ev.grads, max_norm)
    opt.step(params, grads)
    return ev.loss


def make_record(case, what, ours, peer, module=None) -> dict:
    """A benchmark record (:data:`RECORD_KEYS`): our ms, each peer's ms and its ratio to ours."""
    return {"case": case.name, "what": what, "bioplastic_ms": round(ours, 4),
            "torch_ms": None if peer is None else round(peer, 4),
            "ratio": None if peer is None else round(peer / ours, 3),
            "torch_module_ms": None if module is None else round(module, 4),
            "ratio_module": None if module is None else round(module / ours, 3)}
