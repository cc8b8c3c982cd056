"""Benchmarks: how fast bioplastic is against its peers, and what a change is worth.

For users, ``bioplastic bench`` (or ``python -m bioplastic.bench``) times
the LFRNN's forward pass and BPTT iteration against a PyTorch peer run in
the same process (SPEC 10); ``--rules``, ``--models`` and ``--checkpoints``
add the local rules, the other model kinds and the run-file writes. For
developers, ``python -m bioplastic.bench.ab REV`` pairs this checkout
against a git revision call by call, and ``python -m bioplastic.bench.parts``
splits an Euler step into its parts.

Modules
-------
cases
    The cases (N, B, T, dtype), the network and batch each one times, and
    the training step.
torch_peer
    The PyTorch peers and the check that they compute what bioplastic does.
timing
    Blocks of calls that take turns, so a slow spell falls on every side.
machine
    The machine, library versions and the load of other processes.
suite
    The benchmark against PyTorch: records, table, JSON.
rules, models, checkpoints
    The local rules' updates, every model kind, the run-file writes.
ab, parts
    Developer tools: paired A/B timing against a git revision; the parts
    of one Euler step.

Examples
--------
>>> from bioplastic.bench import Case, run_benchmark
>>> records = run_benchmark([Case(16, 4, 10, "float64")], quick=True)  # doctest: +SKIP
"""
from .cases import (DEFAULT_CASES, DTYPES, LAMBDA_TCR, LR, MAX_NORM, QUICK_CASES, RECORD_KEYS, SIZES, Case,
                    bioplastic_step, default_repeats, make_record, setup_case)
from .checkpoints import format_checkpoint_table, run_checkpoint_benchmark
from .machine import cpu_snapshot, format_header, machine_info, other_load
from .models import MODEL_KINDS, format_model_table, model_batch, run_model_benchmark
from .rules import bench_rule_case, eprop_memory, format_rule_table, run_rule_benchmark
from .suite import bench_case, format_table, run_benchmark, write_json
from .timing import ROUNDS, time_blocks
from .torch_peer import GRAD_RTOL, OUTPUT_ATOL, PeerMismatchError, TorchLFRNN, TorchModuleLFRNN, import_torch, \
    verify_peer

__all__ = ["Case", "DEFAULT_CASES", "DTYPES", "GRAD_RTOL", "LAMBDA_TCR", "LR", "MAX_NORM", "MODEL_KINDS",
           "OUTPUT_ATOL", "PeerMismatchError", "QUICK_CASES", "RECORD_KEYS", "ROUNDS", "SIZES", "TorchLFRNN",
           "TorchModuleLFRNN", "bench_case", "bench_rule_case", "bioplastic_step", "cpu_snapshot",
           "default_repeats", "eprop_memory", "format_checkpoint_table", "format_header", "format_model_table",
           "format_rule_table", "format_table", "import_torch", "machine_info", "make_record", "model_batch",
           "other_load", "run_benchmark", "run_checkpoint_benchmark", "run_model_benchmark", "run_rule_benchmark",
           "setup_case", "time_blocks", "verify_peer", "write_json"]
