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

import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from .errors import BioplasticError, ConfigError
from .networks.lfrnn import LFRNN
from .training.objective import loss_and_grads
from .training.optim import Adam, clip_by_global_norm

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
#: Forward-output tolerance of the torch peer, by dtype.
OUTPUT_ATOL = {"float64": 1e-6, "float32": 1e-3}
#: Relative tolerance (on the global norm) for loss and gradients of the peer.
GRAD_RTOL = {"float64": 1e-6, "float32": 1e-2}


class PeerMismatchError(BioplasticError, RuntimeError):
    """The PyTorch peer does not compute what bioplastic computes."""


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


# -- torch (optional, imported lazily) ------------------------------------
def import_torch():
    """Return the ``torch`` module, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


class TorchLFRNN:
    """Plain PyTorch LFRNN with the same equations, loss and optimiser.

    ``x[t+1] = (1-a) x[t] + a (r[t] W^T + u[t] W_in^T + b)``, ``r = tanh(x)``,
    ``y[t] = r[t+1] W_out^T + b_out``; loss = masked MSE + lambda * mean
    squared rate change. The input drive and the readout are computed for all
    steps in one matmul each, as bioplastic does.
    """

    def __init__(self, torch, params, alpha, dtype, lr=LR):
        self.torch = torch
        self.alpha = float(alpha)
        self.tdtype = getattr(torch, np.dtype(dtype).name)
        self.params = {k: torch.tensor(np.array(params[k]), dtype=self.tdtype, requires_grad=True)
                       for k in LFRNN.param_names}
        self.opt = torch.optim.Adam(list(self.params.values()), lr=lr)

    def tensor(self, a):
        return self.torch.as_tensor(np.ascontiguousarray(a), dtype=self.tdtype)

    def forward(self, u):
        """Rates (T+1, B, N) and outputs (T, B, O) for inputs ``u`` (T, B, I)."""
        torch, p, a = self.torch, self.params, self.alpha
        T, B, _ = u.shape
        WT = p["W"].T
        # unbind, not drive[t]: indexing's backward would write a zero-filled
        # (T, B, N) gradient per step, O(T^2) work that would slow the peer.
        drive = (u @ p["W_in"].T + p["b"]).unbind(0)
        x = torch.zeros(B, p["W"].shape[0], dtype=self.tdtype)
        r = torch.tanh(x)
        rates = [r]
        for t in range(T):
            x = (1 - a) * x + a * (r @ WT + drive[t])
            r = torch.tanh(x)
            rates.append(r)
        R = torch.stack(rates)
        y = R[1:] @ p["W_out"].T + p["b_out"]
        return R, y

    def loss(self, u, targets, mask, lambda_tcr=LAMBDA_TCR):
        R, y = self.forward(u)
        err = (y - targets) * mask
        l_task = (err * err).sum() / mask.sum().clamp(min=1.0)
        d = R[1:] - R[:-1]
        l_tcr = (d * d).mean()
        return l_task + lambda_tcr * l_tcr

    def step(self, u, targets, mask, lambda_tcr=LAMBDA_TCR, max_norm=MAX_NORM):
        """One BPTT iteration: forward, loss, backward, clip, Adam."""
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss(u, targets, mask, lambda_tcr)
        loss.backward()
        self.torch.nn.utils.clip_grad_norm_(list(self.params.values()), max_norm)
        self.opt.step()
        return loss


class TorchModuleLFRNN(TorchLFRNN):
    """The same network written as an idiomatic ``torch.nn.Module``.

    This is how tutorials and task toolboxes usually write a rate RNN:
    ``nn.Linear`` layers for the recurrent, input and output weights, the
    input read as ``u[t]`` inside the loop, the readout applied at every
    step, and rates and outputs stacked at the end::

        x = x + a * (-x + rec(r) + inp(u[t])),   r = tanh(x),   y[t] = out(r)

    It computes the same loss and gradients as :class:`TorchLFRNN` (checked
    like it), but with more work per step, so it is the slower peer. SPEC 10
    quotes about 80 ms per BPTT iteration at N=100 for its PyTorch peer,
    closer to this one than to the careful loop.
    """

    def __init__(self, torch, params, alpha, dtype, lr=LR):
        nn = torch.nn
        self.torch = torch
        self.alpha = float(alpha)
        self.tdtype = getattr(torch, np.dtype(dtype).name)
        O, N = np.shape(params["W_out"])
        I = np.shape(params["W_in"])[1]
        module = nn.ModuleDict({"rec": nn.Linear(N, N, bias=False), "inp": nn.Linear(I, N),
                                "out": nn.Linear(N, O)}).to(self.tdtype)
        with torch.no_grad():
            for layer, attr, name in (("rec", "weight", "W"), ("inp", "weight", "W_in"), ("inp", "bias", "b"),
                                      ("out", "weight", "W_out"), ("out", "bias", "b_out")):
                getattr(module[layer], attr).copy_(torch.as_tensor(np.array(params[name]), dtype=self.tdtype))
        self.module = module
        self.params = {"W": module["rec"].weight, "W_in": module["inp"].weight, "b": module["inp"].bias,
                       "W_out": module["out"].weight, "b_out": module["out"].bias}
        self.opt = torch.optim.Adam(module.parameters(), lr=lr)

    def forward(self, u):
        """Rates (T+1, B, N) and outputs (T, B, O) for inputs ``u`` (T, B, I)."""
        torch, m, a = self.torch, self.module, self.alpha
        T, B, _ = u.shape
        x = torch.zeros(B, m["rec"].weight.shape[0], dtype=self.tdtype)
        r = torch.tanh(x)
        rates, outputs = [r], []
        for t in range(T):
            x = x + a * (-x + m["rec"](r) + m["inp"](u[t]))
            r = torch.tanh(x)
            rates.append(r)
            outputs.append(m["out"](r))
        return torch.stack(rates), torch.stack(outputs)


# -- one case ---------------------------------------------------------------
def _setup(case: Case, seed: int = 0):
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


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def verify_peer(torch, net, params, batch, peer_class=None) -> dict:
    """Check that a torch peer (default :class:`TorchLFRNN`) reproduces
    bioplastic on one batch.

    Compares outputs (absolute, ``OUTPUT_ATOL``), loss and gradients of every
    parameter (relative, ``GRAD_RTOL``) for the same weights.

    Returns
    -------
    dict with ``max_output_diff``, ``loss_rel`` and ``grad_rel`` (worst array).

    Raises
    ------
    PeerMismatchError
        If any difference exceeds its tolerance.
    """
    dtype = net.dtype.name
    peer = (peer_class or TorchLFRNN)(torch, params, net.alpha, dtype)
    u, tgt, mask = (peer.tensor(a) for a in (batch.inputs, batch.targets, batch.loss_mask))
    with torch.no_grad():
        _, y = peer.forward(u)
    ours = net.forward(params, batch.inputs).outputs
    diff = float(np.max(np.abs(y.numpy() - ours))) if ours.size else 0.0
    if not diff <= OUTPUT_ATOL[dtype]:
        raise PeerMismatchError(f"torch peer outputs differ from bioplastic by {diff:.3g} "
                                f"(> {OUTPUT_ATOL[dtype]:g}, {dtype})")
    loss = peer.loss(u, tgt, mask)
    loss.backward()
    ev = loss_and_grads(net, params, batch, lambda_tcr=LAMBDA_TCR)
    loss_rel = abs(float(loss.detach()) - ev.loss) / max(abs(ev.loss), 1e-30)
    grad_rel = {k: _rel(peer.params[k].grad.numpy(), ev.grads[k]) for k in LFRNN.param_names}
    worst = max(grad_rel, key=grad_rel.get)
    tol = GRAD_RTOL[dtype]
    if not loss_rel <= tol or not grad_rel[worst] <= tol:
        raise PeerMismatchError(f"torch peer loss/gradients differ from bioplastic ({dtype}): loss "
                                f"rel. error {loss_rel:.3g}, {worst} grad rel. error {grad_rel[worst]:.3g} "
                                f"(tolerance {tol:g})")
    return {"max_output_diff": diff, "loss_rel": loss_rel, "grad_rel": grad_rel[worst]}


#: Timed blocks per implementation: the blocks of the implementations take
#: turns, so that a slow spell of the machine (seen here: 1.5x for minutes,
#: when a neighbour on the host is busy) falls on all of them alike.
ROUNDS = 7


def _time_blocks(fns, repeats, warmup, rounds=ROUNDS):
    """Median ms of each callable (None stays None), timed in blocks that take turns.

    Each callable is called ``warmup`` times untimed, then the callables run
    ``min(rounds, repeats)`` times in turn, each time one untimed call and
    then a block of ``ceil(repeats / rounds)`` timed calls; the median is
    taken over all of a callable's timed calls.

    Blocks rather than alternation call by call: torch's OpenMP threads and
    numpy's OpenBLAS threads spin for a while after each call, and
    alternating the runtimes makes each pay for the other's spinning
    threads. For the same reason bioplastic's kernel workers are sent to
    sleep (:func:`~bioplastic.kernels.threads.idle_workers`) before each block,
    and the block's first call, which wakes the sleeping threads of either
    side, is not timed. Many short blocks rather than a few long ones: this
    machine has slow spells of tens of seconds (up to 1.5x), and with three
    blocks a spell could fall on one side's blocks only (the ratio of the
    N=100 float64 forward pass ranged 3.5x to 4.7x over five runs within an
    hour).
    """
    from .kernels.threads import idle_workers

    rounds = max(1, min(rounds, repeats))
    per_block = max(1, -(-repeats // rounds))
    times = [[] for _ in fns]
    for fn in fns:
        if fn is not None:
            for _ in range(warmup):
                fn()
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            if fn is None:
                continue
            idle_workers()
            gc.collect()
            fn()  # wakes this side's threads after the other side's block
            for _ in range(per_block):
                t0 = time.perf_counter()
                fn()
                times[i].append(time.perf_counter() - t0)
    return [None if fn is None else 1e3 * statistics.median(t) for fn, t in zip(fns, times)]


def _record(case, what, ours, peer, module=None):
    return {"case": case.name, "what": what, "bioplastic_ms": round(ours, 4),
            "torch_ms": None if peer is None else round(peer, 4),
            "ratio": None if peer is None else round(peer / ours, 3),
            "torch_module_ms": None if module is None else round(module, 4),
            "ratio_module": None if module is None else round(module / ours, 3)}


def bench_case(case: Case, repeats: int, warmup: int = 2, torch=None, verify=True) -> list[dict]:
    """Time forward and BPTT of one case against both torch peers; returns two records."""
    net, params, batch = _setup(case)
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

    fwd = _time_blocks([lambda: net.forward(params, batch.inputs), forward_of(TorchLFRNN),
                        forward_of(TorchModuleLFRNN)], repeats, warmup)
    opt = Adam(lr=LR)
    train_params = params.copy()
    bptt = _time_blocks([lambda: bioplastic_step(net, train_params, batch, opt), step_of(TorchLFRNN),
                         step_of(TorchModuleLFRNN)], repeats, warmup)
    return [_record(case, "forward", *fwd), _record(case, "bptt", *bptt)]


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


# -- reporting --------------------------------------------------------------
def machine_info() -> dict:
    """CPU count and library versions of this process."""
    import numba

    info = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "torch": None,
        "torch_threads": None,
    }
    if hasattr(os, "sched_getaffinity"):
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    busy = _cpu_busy()
    if busy is not None:
        info["cpu_busy"] = round(busy, 2)
    torch = import_torch()
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


def cpu_snapshot():
    """(total, idle) CPU seconds of the whole machine and this process's CPU seconds.

    Linux only (``/proc/stat``); returns None elsewhere. Two snapshots give
    the share of the machine that *other* processes used in between, see
    :func:`other_load`.
    """
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        tick = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    t = os.times()
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) / tick, idle / tick, t.user + t.system


def other_load(before, after):
    """Fraction of all CPUs used by other processes between two snapshots."""
    if before is None or after is None:
        return None
    total, idle, own = (b - a for a, b in zip(before, after))
    if total <= 0:
        return None
    return min(max((total - idle - own) / total, 0.0), 1.0)


def _cpu_busy(interval=0.5):
    """Fraction of all CPUs busy (by others) during ``interval`` s, or None."""
    before = cpu_snapshot()
    time.sleep(interval)
    return other_load(before, cpu_snapshot())


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def format_header(info: dict) -> str:
    torch = "not installed" if info["torch"] is None else f"{info['torch']} ({info['torch_threads']} threads)"
    cpus = f"{info['cpu_count']}"
    if "cpus_usable" in info:
        cpus += f" ({info['cpus_usable']} usable)"
    lines = [
        f"bioplastic bench, {info['date']}",
        f"machine: {info['processor']}, {cpus} CPUs, {info['platform']}",
        f"python {info['python']}, numpy {info['numpy']}, numba {info['numba']}, torch {torch}",
    ]
    busy = info.get("cpu_busy")
    if busy is not None:
        lines.append(f"CPU used by other processes just before the run: {100 * busy:.0f}%")
        if busy > 0.1:
            lines.append("WARNING: the machine is busy; multi-threaded torch (and BLAS) timings "
                         "suffer badly from oversubscription, re-run on an idle machine")
    return "\n".join(lines)


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


def write_json(records, path) -> None:
    """Write ``records`` as a JSON list, atomically (temp file + os.replace)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".bench-", suffix=".json.tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump([{k: r[k] for k in RECORD_KEYS} for r in records], f, indent=2)
            f.write("\n")
        from .io.atomic import target_mode

        os.chmod(tmp, target_mode(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def main(argv=None) -> int:
    """``python -m bioplastic.bench [--json FILE] [--repeats R] [--quick]``."""
    from .memory import tune_if_wanted

    tune_if_wanted(default=True)  # the benchmark owns its process, as the CLI does
    import argparse

    from .cli.bench import configure_parser, run

    parser = argparse.ArgumentParser(prog="python -m bioplastic.bench", description=__doc__.split("\n")[0])
    configure_parser(parser)
    try:
        return run(parser.parse_args(argv))
    except BioplasticError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2


# -- local learning rules (SPEC 3): cost of one update, e-prop memory -------------
#: Sizes of the rule cases (N, B, T): the peer comparison's smallest and middle.
RULE_SIZES = ((100, 32, 100), (256, 64, 200))
RULE_CASES = tuple(Case(N, B, T, "float64") for (N, B, T) in RULE_SIZES)
QUICK_RULE_CASES = (Case(32, 8, 20, "float64"),)


def bench_rule_case(case: Case, repeats: int, warmup: int = 2) -> list[dict]:
    """Time one update of e-prop and of node perturbation against a forward pass.

    ``forward`` is :meth:`LFRNN.forward`; ``eprop`` one
    :class:`~bioplastic.rules.EProp` update (fused forward pass with
    eligibility traces, symmetric feedback); ``node_perturbation`` one
    :class:`~bioplastic.rules.NodePerturbation` update with its default
    baseline (an unperturbed and a perturbed forward pass, then the
    reward-modulated eligibility sums); ``node_perturbation_running`` the
    same with the running-mean baseline (one forward pass less). All
    alternate within each repeat. Records carry the usual keys (no torch peer: ``torch_ms`` and
    ``ratio`` are None) plus ``vs_forward``, the rule's median time over the
    forward pass's.
    """
    from .rules import Context, EProp, NodePerturbation

    net, params, batch = _setup(case)
    rules = {"eprop": EProp(), "node_perturbation": NodePerturbation(),
             "node_perturbation_running": NodePerturbation(baseline="running")}
    plans = {k: (r, r.check(net), r.init_state(net, params, np.random.default_rng(0))) for k, r in rules.items()}
    rng = np.random.default_rng(1)

    def run_rule(name):
        rule, targets, state = plans[name]
        return rule.update(Context(net, params, batch, rng=rng).view(rule, targets), state)

    calls = {"forward": lambda: net.forward(params, batch.inputs),
             **{k: (lambda k=k: run_rule(k)) for k in rules}}
    for _ in range(warmup):
        for f in calls.values():
            f()
    times = {k: [] for k in calls}
    gc.collect()
    for _ in range(repeats):
        for k, f in calls.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    out = []
    for k in calls:
        rec = _record(case, k, ms[k], None)
        rec["vs_forward"] = round(ms[k] / ms["forward"], 2)
        out.append(rec)
    return out


def run_rule_benchmark(cases=None, repeats=None, quick=False, log=None) -> list[dict]:
    """Rule-update timings for each case (see :func:`bench_rule_case`)."""
    if cases is None:
        cases = QUICK_RULE_CASES if quick else RULE_CASES
    records = []
    for case in (_as_case(c) for c in cases):
        r = repeats or case.repeats or (QUICK_REPEATS if quick else default_repeats(case))
        records.extend(bench_rule_case(case, int(r), warmup=1 if quick else 2))
        if log is not None:
            log(f"  done rules {case.name} ({r} repeats)")
    return records


def eprop_memory(n_steps=(100, 1000), n_units=100, batch_size=32) -> list[dict]:
    """Peak memory (tracemalloc) of one e-prop update against BPTT, as T grows.

    For each T the inputs, targets and loss mask are built first; then the
    peak of Python-visible allocations during one call is measured for the
    e-prop kernel wrapper without recording outputs (its working memory:
    traces, chunk buffers, gradients), for the full ``EProp`` rule update
    (which also keeps the outputs, T x B x O, for the training loop's
    accuracy), and for one BPTT evaluation (forward trajectory plus adjoint,
    which stores T x B x N states). numba's own per-step temporaries inside
    the kernel (a few B x N arrays) are not seen by tracemalloc; they do not
    depend on T either.

    Returns one record per T: ``n_steps``, ``eprop_kernel_kib``,
    ``eprop_rule_kib``, ``bptt_kib``.
    """
    import tracemalloc

    from .kernels.eprop import eprop_leaky
    from .rules import Context, EProp
    from .rules.models import leaky_form

    out = []
    for T in n_steps:
        net, params, batch = _setup(Case(n_units, batch_size, int(T), "float64"))
        f = leaky_form(net, params)
        ctx = Context(net, params, batch)
        rule = EProp()
        targets = rule.check(net)
        x0 = net.initial_state(batch_size)

        def kernel():
            eprop_leaky(x0, ctx.inputs, ctx.targets, ctx.cmask, None, f.W_in, f.b, f.W, f.W_out, f.b_out,
                        f.W_out, f.leak, f.gain, f.phi_code, record_outputs=False)

        def rule_update():
            rule.update(Context(net, params, batch).view(rule, targets), {})

        def bptt():
            loss_and_grads(net, params, batch)

        rec = {"n_steps": int(T)}
        for key, fn in (("eprop_kernel_kib", kernel), ("eprop_rule_kib", rule_update), ("bptt_kib", bptt)):
            fn()  # compile / warm up outside the measurement
            gc.collect()
            tracemalloc.start()
            tracemalloc.reset_peak()
            fn()
            rec[key] = round(tracemalloc.get_traced_memory()[1] / 1024, 1)
            tracemalloc.stop()
        out.append(rec)
    return out


def format_rule_table(records, memory=None) -> str:
    """Table of rule timings (with the cost relative to a forward pass) and memory."""
    rows = [("case", "what", "bioplastic_ms", "x forward")]
    rows += [(r["case"], r["what"], f"{r['bioplastic_ms']:.2f}", f"{r['vs_forward']:.2f}") for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if memory:
        lines += ["", "peak memory of one update (tracemalloc, KiB):",
                  "T       e-prop kernel   e-prop rule (keeps outputs)   BPTT"]
        lines += [f"{m['n_steps']:<7d} {m['eprop_kernel_kib']:>13.1f}   {m['eprop_rule_kib']:>27.1f}   "
                  f"{m['bptt_kib']:>8.1f}" for m in memory]
    return "\n".join(lines)


# -- the other models: the same kernels' design, timed against the LFRNN --------
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
    from .networks import make_network
    from .training.objective import loss_and_grads

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
    ms = dict(zip(calls, _time_blocks(list(calls.values()), repeats, warmup=1 if quick else 2)))
    out = []
    for (kind, what), t in ms.items():
        rec = _record(case, what, t, None)
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


# -- run-file writes (SPEC 10: checkpoint writes O(1) each) ---------------------------------
#: Iterations and checkpoint intervals of the checkpoint benchmark.
CHECKPOINT_ITERATIONS = 400
CHECKPOINT_EVERY = (1, 100)
QUICK_CHECKPOINTS = {"iterations": 40, "every": (1, 10), "repeats": 1}


def run_checkpoint_benchmark(iterations=CHECKPOINT_ITERATIONS, every=CHECKPOINT_EVERY, repeats=3, quick=False,
                             model="lfrnn", task="flipflop", log=None) -> list[dict]:
    """Time training with a run file written at every checkpoint, for each interval in ``every``.

    What ``bioplastic train --model lfrnn --task flipflop --checkpoint-every K
    --no-early-stop --iterations 400 --out DIR`` does, in this process (so
    the timings hold training and writes, not Python's start): the default
    LFRNN spec (N = 64, Adam, batch 32) trained on the 3-bit flip-flop, the
    run file written at each checkpoint and at the end. A run with few
    checkpoints costs about the training alone; the ratio of the others'
    time to it is the cost of their writes. After an untimed warm-up run the
    intervals take turns over ``repeats`` rounds (a slow spell of the machine
    falls on all of them); medians are reported.

    Returns
    -------
    list of dict, one per interval: ``every``, ``iterations``, ``checkpoints``
    (kept, the first and last included), ``median_s`` (of the whole
    training), ``ms_per_iteration``, ``file_mb`` (the run file at the end) and
    ``vs_sparsest`` (median time over that of the largest interval).
    """
    import bioplastic as bp
    from .io.specs import load_spec, network_from_spec

    if quick:
        iterations, every, repeats = (QUICK_CHECKPOINTS[k] for k in ("iterations", "every", "repeats"))
    every = tuple(int(k) for k in every)
    if not every or min(every) < 1:
        raise ConfigError(f"checkpoint intervals must be positive integers, got {every!r}")
    spec = load_spec(model)
    task_obj = bp.get_task(task)
    training = {k: v for k, v in spec["training"].items() if k != "iterations"}

    def run(k, n):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "run.h5")
            net = network_from_spec(spec, task_obj)
            t0 = time.perf_counter()
            bp.train(net, task_obj, seed=0, iterations=n, checkpoint_every=k, early_stop=False,
                     run_file=path, progress=False, **training)
            return time.perf_counter() - t0, os.path.getsize(path)

    run(1, 3)  # warm-up: kernels, caches
    times, sizes = {k: [] for k in every}, {}
    for _ in range(int(repeats)):
        for k in every:
            t, sizes[k] = run(k, iterations)
            times[k].append(t)
        if log is not None:
            log("  checkpoints: " + ", ".join(f"every {k}: {times[k][-1]:.2f} s" for k in every))
    base = statistics.median(times[max(every)])
    out = []
    for k in every:
        med = statistics.median(times[k])
        out.append({"every": k, "iterations": int(iterations), "checkpoints": len(range(0, iterations + 1, k)),
                    "median_s": round(med, 3), "ms_per_iteration": round(1e3 * med / iterations, 3),
                    "file_mb": round(sizes[k] / 1e6, 2), "vs_sparsest": round(med / base, 2)})
    return out


def format_checkpoint_table(records) -> str:
    """Table of the checkpoint benchmark."""
    rows = [("checkpoint every", "iterations", "checkpoints", "median s", "ms/iteration", "file MB", "x sparsest")]
    rows += [(str(r["every"]), str(r["iterations"]), str(r["checkpoints"]), f"{r['median_s']:.2f}",
              f"{r['ms_per_iteration']:.2f}", f"{r['file_mb']:.2f}", f"{r['vs_sparsest']:.2f}") for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def rules_main(argv=None) -> int:
    """``python -c "import bioplastic.bench as b; b.rules_main()"`` [--quick] [--json FILE]:
    time the local rules' updates and measure e-prop's memory against T."""
    import argparse

    p = argparse.ArgumentParser(prog="bioplastic.bench.rules_main", description=bench_rule_case.__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    print(format_header(machine_info()), flush=True)
    records = run_rule_benchmark(repeats=a.repeats, quick=a.quick,
                                 log=lambda m: print(m, file=sys.stderr, flush=True))
    memory = eprop_memory(n_steps=(20, 200) if a.quick else (100, 1000))
    print()
    print(format_rule_table(records, memory))
    if a.json:
        from .io.atomic import write_text

        write_text(a.json, json.dumps({"records": records, "eprop_memory": memory}, indent=2) + "\n")
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
