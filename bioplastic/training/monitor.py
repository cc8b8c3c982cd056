"""The held-out side of a training loop: evaluations, the sustained criterion, the memory test.

Both loops (:func:`bioplastic.train` and
:func:`bioplastic.training.local.train_local`) hand it the parameters at the
top of every iteration; it decides whether a held-out evaluation is due,
keeps the :class:`~bioplastic.training.criteria.SuccessTracker`, knows when
an early-stopping run must end (the confirmation plus ``continue_after``),
runs the memory test at the confirmation when training goes on past it, and
scores the final network. Its state travels with a run's resume state.
"""
from __future__ import annotations

from .criteria import SuccessTracker
from .evaluation import held_out_evaluation, memory_generalization


class HeldOutMonitor:
    """Held-out evaluations and stopping for one run.

    Parameters
    ----------
    network, task : what is trained
    criterion : resolved SuccessCriterion
    iterations : int, the budget (the last iteration is always evaluated)
    eval_batch_size : int, trials of each held-out evaluation
    memory : dict or None, memory-test settings (``factor``, ``n_trials``)
    early_stop : bool; continue_after : int
    eval_rng, memory_rng : the run's "eval" and "memory" streams
    """

    def __init__(self, network, task, criterion, *, iterations, eval_batch_size, memory, early_stop,
                 continue_after, eval_rng, memory_rng):
        self.network, self.task = network, task
        self.tracker = SuccessTracker(criterion)
        self.iterations = iterations
        self.eval_batch_size = eval_batch_size
        self.memory = memory
        self.early_stop, self.continue_after = early_stop, continue_after
        self.eval_rng, self.memory_rng = eval_rng, memory_rng
        self.stop_at = None
        self.memory_at_criterion = None

    def evaluate(self, k, params, simulate=None, ready=True) -> tuple[float, float]:
        """Held-out (accuracy, loss) at iteration k, or NaNs when no evaluation is due
        (or ``ready`` is False: the training loss is not finite)."""
        if not (ready and self.tracker.due(k, self.iterations)):
            return float("nan"), float("nan")
        acc, loss = held_out_evaluation(self.network, params, self.task, self.eval_batch_size, self.eval_rng,
                                        simulate)
        if self.tracker.update(k, acc, loss):
            self.stop_at = k + self.continue_after if self.early_stop else None
            if self.memory and (not self.early_stop or self.continue_after):
                self.memory_at_criterion = self._memory_test(params, simulate)
        return acc, loss

    def done(self, k) -> bool:
        """Whether iteration k is the run's last (budget reached, or stop after confirmation)."""
        return k == self.iterations or (self.stop_at is not None and k >= self.stop_at)

    def finish(self, params, simulate=None) -> dict:
        """Score the final network: ``final_accuracy``, ``final_loss``, ``memory_test``,
        ``memory_test_at_criterion`` (the final test when the run stopped at the confirmation)."""
        acc, loss = held_out_evaluation(self.network, params, self.task, self.eval_batch_size, self.eval_rng,
                                        simulate)
        out = {"final_accuracy": acc, "final_loss": loss}
        if self.memory:
            out["memory_test"] = self._memory_test(params, simulate)
            at_crit = self.memory_at_criterion
            if self.tracker.confirmed_at is not None and at_crit is None:
                at_crit = out["memory_test"]  # stopped at the confirmation
            out["memory_test_at_criterion"] = at_crit
        return out

    def _memory_test(self, params, simulate):
        return memory_generalization(self.network, params, self.task, self.memory_rng, simulate=simulate,
                                     **self.memory)

    @property
    def converged_at(self):
        return self.tracker.converged_at

    @property
    def confirmed_at(self):
        return self.tracker.confirmed_at

    def state(self) -> dict:
        return {"tracker": self.tracker.state(), "stop_at": self.stop_at,
                "memory_test_at_criterion": self.memory_at_criterion}

    def load_state(self, state: dict) -> None:
        self.tracker.load_state(state["tracker"])
        self.stop_at = state["stop_at"]
        self.memory_at_criterion = state.get("memory_test_at_criterion")

