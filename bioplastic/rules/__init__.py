"""Learning rules: small parameter objects that declare what they read and
modify; the maths lives in :mod:`bioplastic.kernels`.

Built-ins (registered here):

- ``node_perturbation``: reward-modulated node perturbation (SPEC 3)
- ``eprop``: e-prop / RFLO eligibility traces, symmetric or random feedback
- ``readout``: the delta rule on the readout alone (the reservoir control)
- ``tcr_stp``: TCR as short-term synaptic plasticity (SPEC 4)
- ``freeze_in``: consolidation of the TCR-STP term (project's reconstruction)
- ``bptt``: the exact gradient, the (non-local) yardstick

Third-party rules register through the entry-point group ``bioplastic.rules``
(:mod:`.plugins`, docs/plugins.md); ``bioplastic.testing.check_rule`` runs
the contract tests the built-ins pass. Rules compose: ``get_rule("eprop+tcr_stp")``
or ``EProp() + TCRSTP()``. Train with :func:`bioplastic.training.local.train_local`.

Examples
--------
>>> from bioplastic.rules import get_rule
>>> rule = get_rule("eprop+tcr_stp", tcr_stp={"eta_s": 0.02})
>>> rule.name, rule.reads
('eprop+tcr_stp', ('pre', 'post', 'error', 'feedback'))
"""
from .base import SIGNALS, NonFiniteRewardError, Rule, Update
from .bptt import BPTT
from .compose import Composite, compose
from .context import Context, RuleView, UndeclaredSignalError
from .eprop import EProp
from .freeze_in import FreezeIn
from .node_perturbation import NodePerturbation
from .readout import Readout
from .plugins import PluginWarning, load_plugins, refresh_plugins
from .registry import RULES, get_rule, list_rules, register_rule, rule_from_description, rule_table
from .tcr_stp import TCRSTP

for _cls in (NodePerturbation, EProp, Readout, TCRSTP, FreezeIn, BPTT):
    register_rule(_cls, source="bioplastic")
del _cls

__all__ = ["SIGNALS", "NonFiniteRewardError", "Rule", "Update", "BPTT", "Composite", "compose", "Context",
           "RuleView", "UndeclaredSignalError", "EProp", "FreezeIn", "NodePerturbation", "PluginWarning",
           "load_plugins", "Readout", "refresh_plugins", "RULES", "get_rule", "list_rules", "register_rule",
           "rule_from_description", "rule_table", "TCRSTP"]
