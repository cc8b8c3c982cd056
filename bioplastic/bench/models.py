"""Every model kind timed against the LFRNN (``bioplastic bench --models``)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from .cases import LAMBDA_TCR, QUICK_REPEATS, Case, _as_case, default_repeats, make_record
from .timing import time_blocks


MODEL_KINDS = ("lfrnn", "rank1", "plrnn", "lstm")
MODEL_CASE = Case(100, 32, 100, "float64")
QUICK_MODEL_CASE = Case(16, 4, 10, "float64")


#: Inputs and outputs of the networks the model benchmark builds.
MODEL_IO = 3


def model_batch(case: Case, rng):
    """A random batch of ``case``'s size for :data:`MODEL_IO` inputs and outputs:
    inputs, targets, an all-ones loss mask (what ``loss_and_grads`` reads)."""
    T, B = case.n_steps, case.batch_size
    return SimpleNamespace(inputs=rng.standard_normal((T, B, MODEL_IO)).astype(case.dtype),
                           targets=rng.standard_normal((T, B, MODEL_IO)).astype(case.dtype),
                           loss_mask=np.ones((T, B, MODEL_IO), dtype=case.dtype), epochs={})


def run_model_benchmark(case=None, repeats=None, quick=False, kinds=MODEL_KINDS) -> list[dict]:
    """Forward pass and one loss-and-gradients evaluation (masked MSE + TCR,
    the adjoint) of each model kind, with default settings, at one size.

    No torch peer: records carry the usual keys (``torch_ms`` and ``ratio``
    None) plus ``vs_lfrnn``, the time over the LFRNN's for the same ``what``.
    An LSTM with H units does 4 H x H products per step, so about 4x the
    LFRNN's work is its par. The kinds alternate within each repeat.
    """
    from ..networks import make_network
    from ..training.objective import loss_and_grads

    case = _as_case(case or (QUICK_MODEL_CASE if quick else MODEL_CASE))
    repeats = int(repeats or (QUICK_REPEATS if quick else default_repeats(case)))
    rng = np.random.default_rng(0)
    batch = model_batch(case, rng)
    u = batch.inputs
    calls = {}
    for kind in kinds:
        net = make_network(kind, MODEL_IO, MODEL_IO, n_units=case.n_units, dtype=case.dtype)
        params = net.init_params(rng)
        calls[(kind, "forward")] = lambda net=net, params=params: net.forward(params, u)
        calls[(kind, "loss_and_grads")] = (lambda net=net, params=params:
                                           loss_and_grads(net, params, batch, lambda_tcr=LAMBDA_TCR))
    ms = dict(zip(calls, time_blocks(list(calls.values()), repeats, warmup=1 if quick else 2)))
    out = []
    for (kind, what), t in ms.items():
        rec = make_record(case, what, t, None)
        rec["case"] = f"{kind} {rec['case']}"
        base = ms.get(("lfrnn", what))
        rec["vs_lfrnn"] = None if base is None else round(t / base, 2)
        out.append(rec)
    return out


def format_model_table(records) -> str:
    """Table of the model timings, with the cost relative to the LFRNN's."""
    rows = [("case", "what", "bioplastic_ms", "x lfrnn")]
    rows += [(r["case"], r["what"], f"{r['bioplastic_ms']:.2f}",
              "" if r["vs_lfrnn"] is None else f"{r['vs_lfrnn']:.2f}") for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
