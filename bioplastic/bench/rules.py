"""The local rules' cost: one update of e-prop and of node perturbation against a
forward pass, and e-prop's peak memory against T (``bioplastic bench --rules``)."""
from __future__ import annotations

import gc
import json
import statistics
import sys
import time

import numpy as np

from ..training.objective import loss_and_grads
from .cases import QUICK_REPEATS, Case, _as_case, default_repeats, make_record, setup_case


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
    from ..rules import Context, EProp, NodePerturbation

    net, params, batch = setup_case(case)
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
        rec = make_record(case, k, ms[k], None)
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

    from ..kernels.eprop import eprop_leaky
    from ..rules import Context, EProp
    from ..rules.models import leaky_form

    out = []
    for T in n_steps:
        net, params, batch = setup_case(Case(n_units, batch_size, int(T), "float64"))
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


def main(argv=None) -> int:
    """``python -m bioplastic.bench.rules [--quick] [--repeats R] [--json FILE]``: time the local
    rules' updates and measure e-prop's memory against T (``bioplastic bench --rules`` without the torch suite)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m bioplastic.bench.rules", description=bench_rule_case.__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    from .machine import format_header, machine_info

    print(format_header(machine_info()), flush=True)
    records = run_rule_benchmark(repeats=a.repeats, quick=a.quick,
                                 log=lambda m: print(m, file=sys.stderr, flush=True))
    memory = eprop_memory(n_steps=(20, 200) if a.quick else (100, 1000))
    print()
    print(format_rule_table(records, memory))
    if a.json:
        from ..io.atomic import write_text

        write_text(a.json, json.dumps({"records": records, "eprop_memory": memory}, indent=2) + "\n")
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
