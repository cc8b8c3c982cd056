"""Speed benchmark of the LFRNN forward pass and BPTT iteration against PyTorch (SPEC 10).

Each case is one network size ``(N, B, T)`` and one dtype. Two things are
timed for a tanh LFRNN with I = 3 inputs and O = 3 outputs, on random inputs
and targets with a full loss mask:

``forward``
    :meth:`LFRNN.forward` (Euler integration plus readout).
``bptt``
    one training iteration: forward, masked MSE plus TCR on the rates
    (lambda = 0.1), adjoint backward pass, clipping to global norm 1, Adam step.

The peer is a plain PyTorch CPU implementation of the *same* network and loss
(an Euler loop in Python over T with torch ops, autograd, ``clip_grad_norm_``
and ``torch.optim.Adam``), run in the same process, in the same dtype, with
the same weights, and with torch's default thread count. Before timing, each
case checks that the peer reproduces bioplastic's outputs (1e-6 in float64,
1e-3 in float32), loss and gradients, and raises :class:`PeerMismatchError`
otherwise. Torch is optional: without it the torch columns are ``None``.

Timings exclude warm-up (numba compilation, torch's first-call setup). The
implementations are timed in short blocks of repeats that take turns over
:data:`ROUNDS` rounds, so that a slow spell of the machine falls on all of
them, each block after one untimed call; medians over all timed calls are
reported in milliseconds.

Examples
--------
>>> from bioplastic.bench import Case, run_benchmark
>>> records = run_benchmark([Case(16, 4, 10, "float64")], quick=True)  # doctest: +SKIP
>>> sorted(records[0])  # doctest: +SKIP
['bioplastic_ms', 'case', 'ratio', 'torch_ms', 'what']
"""
from __future__ import annotations

import json

from ..errors import ConfigError
from ..training.optim import Adam
from .cases import (DEFAULT_CASES, DTYPES, LR, QUICK_CASES, QUICK_REPEATS, RECORD_KEYS, Case, _as_case,
                    bioplastic_step, default_repeats, make_record, setup_case)
from .timing import time_blocks
from .torch_peer import TorchLFRNN, TorchModuleLFRNN, import_torch, verify_peer


def bench_case(case: Case, repeats: int, warmup: int = 2, torch=None, verify=True) -> list[dict]:
    """Time forward and BPTT of one case against both torch peers; returns two records."""
    net, params, batch = setup_case(case)
    peers = {}
    if torch is not None:
        for cls in (TorchLFRNN, TorchModuleLFRNN):
            if verify:
                verify_peer(torch, net, params, batch, cls)
            peer = cls(torch, params, net.alpha, case.dtype)
            peers[cls] = (peer, [peer.tensor(a) for a in (batch.inputs, batch.targets, batch.loss_mask)])

    def forward_of(cls):
        if cls not in peers:
            return None
        peer, (u, _, _) = peers[cls]

        def run():
            with torch.no_grad():
                peer.forward(u)
        return run

    def step_of(cls):
        if cls not in peers:
            return None
        peer, tensors = peers[cls]
        return lambda: peer.step(*tensors)

    fwd = time_blocks([lambda: net.forward(params, batch.inputs), forward_of(TorchLFRNN),
                        forward_of(TorchModuleLFRNN)], repeats, warmup)
    opt = Adam(lr=LR)
    train_params = params.copy()
    bptt = time_blocks([lambda: bioplastic_step(net, train_params, batch, opt), step_of(TorchLFRNN),
                         step_of(TorchModuleLFRNN)], repeats, warmup)
    return [make_record(case, "forward", *fwd), make_record(case, "bptt", *bptt)]


def run_benchmark(cases=None, repeats=None, quick=False, *, use_torch=True, verify=True, log=None) -> list[dict]:
    """Run the benchmark and return one record per (case, what).

    Parameters
    ----------
    cases : sequence of Case (or (N, B, T[, dtype]) tuples, or dicts) or None
        None: :data:`DEFAULT_CASES` (``QUICK_CASES`` when ``quick``).
    repeats : int or None
        Timed repeats per case (None: the case's own, else
        :func:`default_repeats`; ``QUICK_REPEATS`` when ``quick``).
    quick : bool
        A tiny run: small cases, 3 repeats, 1 warm-up call.
    use_torch : bool
        Measure the PyTorch peer when torch is importable.
    verify : bool
        Check the peer against bioplastic before timing each case.
    log : callable or None
        Called with a progress line after each case.

    Returns
    -------
    list of dict with keys ``case``, ``what`` ("forward" or "bptt"),
    ``bioplastic_ms``, ``torch_ms`` and ``ratio`` (torch_ms / bioplastic_ms;
    both None when torch is missing).
    """
    if cases is None:
        cases = QUICK_CASES if quick else DEFAULT_CASES
    cases = [_as_case(c) for c in cases]
    if repeats is not None and (isinstance(repeats, bool) or int(repeats) != repeats or repeats < 1):
        raise ConfigError(f"repeats must be a positive integer, got {repeats!r}")
    torch = import_torch() if use_torch else None
    records = []
    for case in cases:
        if case.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {DTYPES}, got {case.dtype!r}")
        r = repeats or case.repeats or (QUICK_REPEATS if quick else default_repeats(case))
        recs = bench_case(case, int(r), warmup=1 if quick else 2, torch=torch, verify=verify)
        records.extend(recs)
        if log is not None:
            log(f"  done {case.name} ({r} repeats)")
    return records


def format_table(records) -> str:
    """Fixed-width table: case, what, bioplastic_ms, then each torch peer's ms and ratio."""
    def fmt(v, spec):
        return "-" if v is None else format(v, spec)

    rows = [("case", "what", "bioplastic_ms", "torch_ms", "ratio", "torch_module_ms", "ratio_module")]
    rows += [(r["case"], r["what"], fmt(r["bioplastic_ms"], ".2f"), fmt(r["torch_ms"], ".2f"),
              fmt(r["ratio"], ".1f"), fmt(r.get("torch_module_ms"), ".2f"), fmt(r.get("ratio_module"), ".1f"))
             for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for k, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_json(records, path, keys=RECORD_KEYS) -> None:
    """Write ``records`` as a JSON list, atomically; ``keys``: the keys kept, in order (None: all)."""
    from ..io.atomic import write_text

    rows = records if keys is None else [{k: r[k] for k in keys} for r in records]
    write_text(path, json.dumps(rows, indent=2) + "\n")
