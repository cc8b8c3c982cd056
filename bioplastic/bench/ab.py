"""Paired A/B timing of this checkout against an earlier git revision (a developer tool).

``bioplastic bench`` compares bioplastic with PyTorch. To see what one
change to the kernels is worth, compare two versions of bioplastic instead,
in one process, call by call: the machine this project runs on has slow
spells of a minute or more (a busy neighbour on the host; seen: 1.5x), and
timings taken minutes apart mix them with the change. Here each call of the
old version is followed by one of the new (the order alternates), and the
ratio of each pair is kept; the report gives the median ratio and its
quartiles.

Run from a git checkout::

    python -m bioplastic.bench.ab HEAD~3                 # N=100 B=32 T=100
    python -m bioplastic.bench.ab HEAD~3 512,128,200     # other sizes
    python -m bioplastic.bench.ab --warm 8 HEAD~3        # back-to-back calls
    python -m bioplastic.bench.ab --kind lstm HEAD~3     # another model kind

The old revision's ``bioplastic/`` is extracted with ``git archive`` into a
temporary folder and imported under another name; its numba cache lives
there, so the first run compiles it. Both versions' kernel workers are sent
to sleep before every timed call, so neither spins against the other.

That times every call with its own workers asleep, as after a pause of a
millisecond or more. ``--warm K`` times the other regime, that of a training
loop or ``bioplastic bench``: each side of a pair is the median of K calls
in a row (workers spinning between them) after one untimed call.

``--kind`` (``plrnn``, ``lstm``, ``rank1``; default ``lfrnn``) times that
model with its default settings instead: its forward pass and one
``loss_and_grads`` (masked MSE plus TCR, the adjoint; "bptt" in the
report), with the same parameters on both sides.
"""
from __future__ import annotations

import importlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import BioplasticError

OLD_NAME = "bioplastic_ab_old"


def extract_revision(rev: str, into: Path) -> None:
    """``bioplastic/`` of git revision ``rev`` as package :data:`OLD_NAME` in ``into``."""
    root = Path(__file__).resolve().parents[2]  # the checkout: bioplastic/bench/ab.py
    archive = subprocess.run(["git", "-C", str(root), "archive", rev, "bioplastic"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    (into / "bioplastic").rename(into / OLD_NAME)
    pattern = re.compile(r"\b(from|import) bioplastic\b")
    for path in (into / OLD_NAME).rglob("*.py"):
        text = path.read_text()
        if pattern.search(text):
            path.write_text(pattern.sub(rf"\1 {OLD_NAME}", text))


def _import_old(*modules):
    """The old revision's module at the first of ``modules`` it has (modules move between revisions:
    the thread pool was ``kernels.threads`` before 2026-12-07, ``machinery.threads`` since)."""
    for i, mod in enumerate(modules):
        try:
            return importlib.import_module(f"{OLD_NAME}.{mod}")
        except ModuleNotFoundError:
            if i == len(modules) - 1:
                raise

def paired_ratios(old_fn, new_fn, calls: int, idle_old, idle_new, warm: int = 0) -> tuple[list, list, list]:
    """Times of ``calls`` alternating pairs and the ratios old / new.

    With ``warm`` > 0, each time is the median of ``warm`` calls in a row
    after one untimed call.
    """
    t_old, t_new = [], []

    def timed(fn):
        if not warm:
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0
        fn()
        ts = []
        for _ in range(warm):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    for k in range(calls):
        order = ((old_fn, t_old, idle_new), (new_fn, t_new, idle_old))
        for fn, out, idle_other in (order if k % 2 == 0 else order[::-1]):
            idle_other()
            out.append(timed(fn))
    return t_old, t_new, [a / b for a, b in zip(t_old, t_new)]


def _lfrnn_pairs(case, old):
    """(old, new) callables of the LFRNN's forward pass and BPTT iteration (bench's)."""
    from .cases import bioplastic_step, setup_case
    from ..training.optim import Adam

    net, params, batch = setup_case(case)
    old_net = old["lfrnn"].LFRNN(case.n_units, net.n_inputs, net.n_outputs, g=net.g,
                                 nonlinearity=net.nonlinearity, dt=net.dt, tau=net.tau, dtype=case.dtype)
    p_old, p_new = params.copy(), params.copy()
    o_old, o_new = old["optim"].Adam(lr=1e-3), Adam(lr=1e-3)
    return {
        "forward": (lambda: old_net.forward(params, batch.inputs), lambda: net.forward(params, batch.inputs)),
        "bptt": (lambda: old["bench"].bioplastic_step(old_net, p_old, batch, o_old),
                 lambda: bioplastic_step(net, p_new, batch, o_new)),
    }


def _model_pairs(kind, case, old):
    """(old, new) callables of a model kind's forward pass and loss_and_grads, default settings."""
    from .cases import LAMBDA_TCR
    from .models import MODEL_IO, model_batch
    from ..networks import make_network
    from ..training.objective import loss_and_grads

    rng = np.random.default_rng(0)
    batch = model_batch(case, rng)
    net = make_network(kind, MODEL_IO, MODEL_IO, n_units=case.n_units, dtype=case.dtype)
    old_net = old["networks"].make_network(kind, MODEL_IO, MODEL_IO, n_units=case.n_units, dtype=case.dtype)
    params = {k: np.array(v) for k, v in net.init_params(rng).items()}
    return {
        "forward": (lambda: old_net.forward(params, batch.inputs), lambda: net.forward(params, batch.inputs)),
        "bptt": (lambda: old["objective"].loss_and_grads(old_net, params, batch, lambda_tcr=LAMBDA_TCR),
                 lambda: loss_and_grads(net, params, batch, lambda_tcr=LAMBDA_TCR)),
    }


def compare(rev: str, sizes, dtypes=("float32", "float64"), log=print, warm: int = 0,
            kind: str = "lfrnn") -> list[dict]:
    """Paired forward and BPTT timings of ``rev`` against this checkout
    (for a ``kind`` other than the LFRNN, "bptt" is one loss_and_grads)."""
    from .cases import Case
    from ..machinery.threads import idle_workers
    from ..networks import MODELS

    if kind != "lfrnn":
        MODELS.get(kind)  # an unknown kind fails here, before the extraction
    tmp = tempfile.mkdtemp(prefix="bioplastic-ab-")
    extract_revision(rev, Path(tmp))
    sys.path.insert(0, tmp)
    old = {name: _import_old(*modules) for name, *modules in (
        ("bench", "bench"), ("lfrnn", "networks.lfrnn"), ("optim", "training.optim"),
        ("networks", "networks"), ("objective", "training.objective"),
        ("threads", "machinery.threads", "kernels.threads"))}
    idle_old = getattr(old["threads"], "idle_workers", lambda: None)
    records = []
    for (N, B, T) in sizes:
        for dtype in dtypes:
            case = Case(N, B, T, dtype)
            pairs = _lfrnn_pairs(case, old) if kind == "lfrnn" else _model_pairs(kind, case, old)
            calls = min(150, max(10, int(150 * (100 ** 2 * 32 * 100) / (N * N * B * T))))
            if warm:
                calls = max(10, calls // warm)
            for what, (old_fn, new_fn) in pairs.items():
                for _ in range(3):
                    old_fn()
                    new_fn()
                t_old, t_new, ratios = paired_ratios(old_fn, new_fn, calls, idle_old, idle_workers, warm)
                q1, med, q3 = np.percentile(ratios, [25, 50, 75])
                name = case.name if kind == "lfrnn" else f"{kind} {case.name}"
                rec = {"case": name, "what": what, "old_ms": 1e3 * statistics.median(t_old),
                       "new_ms": 1e3 * statistics.median(t_new), "speedup": med, "q1": q1, "q3": q3, "pairs": calls}
                records.append(rec)
                log(f"{rec['case']:32s} {what:7s} old {rec['old_ms']:8.3f} ms  new {rec['new_ms']:8.3f} ms  "
                    f"speed-up {med:.3f} (quartiles {q1:.3f} to {q3:.3f}, {calls} pairs)")
    return records


def _warm_count(text: str) -> int:
    import argparse

    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"K must be a positive integer, got {text!r}")
    return int(text)


def main(argv=None) -> int:
    from ..memory import tune_if_wanted

    tune_if_wanted(default=True)  # the benchmark owns its process, as the CLI does
    import argparse

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    parser = argparse.ArgumentParser(prog="python -m bioplastic.bench.ab", add_help=False)
    parser.add_argument("--warm", type=_warm_count, default=0, metavar="K")
    parser.add_argument("--kind", type=str.lower, default="lfrnn")
    parser.add_argument("rev")
    parser.add_argument("sizes", nargs="*", metavar="N,B,T")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed the usage and the problem
        return int(exc.code or 0)
    sizes = [tuple(int(v) for v in s.split(",")) for s in args.sizes] or [(100, 32, 100)]
    try:
        compare(args.rev, sizes, warm=args.warm, kind=args.kind)
    except BioplasticError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
