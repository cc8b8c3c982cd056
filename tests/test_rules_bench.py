"""Rule cases of the benchmark, and e-prop's memory against T (SPEC 3, 10).

Speed is what the benchmark measures, not what tests check; memory
independence of T is a property of the algorithm and is checked here.
"""
from bioplastic import bench
from bioplastic.machinery import threads


def test_rule_records():
    recs = bench.run_rule_benchmark(quick=True, repeats=1)
    assert [r["what"] for r in recs] == ["forward", "eprop", "node_perturbation", "node_perturbation_running"]
    for r in recs:
        assert set(r) == set(bench.RECORD_KEYS) | {"vs_forward"}
        assert r["torch_ms"] is None and r["ratio"] is None and r["bioplastic_ms"] > 0
    assert recs[0]["vs_forward"] == 1.0
    assert "x forward" in bench.format_rule_table(recs)


def test_eprop_memory_does_not_grow_with_T():
    # One thread, so one row block at both T: with two, each block has its own
    # buffers, and whether the blocks' lifetimes overlap (the peak) depends on
    # thread timing, which is what a short run and a long run differ in.
    old = threads.kernel_threads()
    threads.set_kernel_threads(1)
    try:
        small, large = bench.eprop_memory(n_steps=(30, 600), n_units=24, batch_size=8)
    finally:
        threads.set_kernel_threads(old)
    assert abs(small["eprop_kernel_kib"] - large["eprop_kernel_kib"]) < 2
    # BPTT keeps the trajectory: its memory grows with T (so the comparison can fail)
    assert large["bptt_kib"] > 10 * small["bptt_kib"]
    # the full rule also keeps the outputs (T x B x O) for the training loop's accuracy, nothing more
    grown = (large["eprop_rule_kib"] - small["eprop_rule_kib"]) * 1024
    assert grown < 3 * (600 - 30) * 8 * 3 * 8
