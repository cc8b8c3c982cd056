"""Geometry of memory (SPEC 5): fixed and slow points, GR events, abrupt learning, slow dynamics.

Modules, one job each:

- :mod:`~bioplastic.analysis.maps`: the one-step map F of every model and its Jacobian
- :mod:`~bioplastic.analysis.fixed_points`: fixed/slow points by minimising q(x) = 1/2 |F(x) - x|^2
- :mod:`~bioplastic.analysis.plrnn_exact`: exact PLRNN fixed points, region by region
- :mod:`~bioplastic.analysis.geometry`: GR events across checkpoints
- :mod:`~bioplastic.analysis.abrupt`: plateau / drop detector and GR lead time
- :mod:`~bioplastic.analysis.gr_null`: does GR precede the drop beyond chance (shifted-event null)
- :mod:`~bioplastic.analysis.attractors`: stable fixed points against the memories a task needs
- :mod:`~bioplastic.analysis.collapse`: collapse onto a trivial attractor; a run's outcome
- :mod:`~bioplastic.analysis.slow_dynamics`: autocorrelation timescales, ramping units
- :mod:`~bioplastic.analysis.run_analysis`: all of it on a run file (``bioplastic analyze``)
- :mod:`~bioplastic.analysis.store`: the ``RUN.analysis.h5`` sibling file

Definitions that reconstruct the paper (whose body is not available) are
marked as such in the module docstrings and in docs/analysis.md.
"""
from .abrupt import AbruptLearning, detect_abrupt_learning, gr_lead_time
from .attractors import memory_attractors
from .collapse import classify_outcome, collapse_report
from .gr_null import GRRun, gr_precedence_test
from .fixed_points import STABILITY, FixedPoints, find_fixed_points, sample_states
from .geometry import GREvents, gr_events, match_fixed_points, state_spread
from .maps import autonomous_map, trajectory_states
from .plrnn_exact import plrnn_exact_fixed_points
from .run_analysis import RunAnalysis, analyze_run, make_figures
from .slow_dynamics import autocorrelation, autocorrelation_timescales, ramping_units
from .store import analysis_path, read_analysis, write_analysis

__all__ = ["AbruptLearning", "detect_abrupt_learning", "gr_lead_time", "memory_attractors", "collapse_report",
           "classify_outcome", "GRRun",
           "gr_precedence_test", "STABILITY", "FixedPoints",
           "find_fixed_points", "sample_states", "GREvents", "gr_events", "match_fixed_points", "state_spread",
           "autonomous_map", "trajectory_states", "plrnn_exact_fixed_points", "RunAnalysis", "analyze_run",
           "make_figures", "autocorrelation", "autocorrelation_timescales", "ramping_units", "analysis_path",
           "read_analysis", "write_analysis"]
