"""Diagnostics for any rule: alignment with the BPTT gradient, update variance.

Both are measured on the batch the rule just learned from, with the same
parameters and private noise, and leave the training run untouched: the
rule's state is deep-copied and the random draws come from a generator of
their own.

- **alignment**: cosine between the rule's descent direction and the exact
  BPTT gradient of the task loss, over the parameters the rule modifies.
  The descent direction is the rule's ``grads`` (or ``-deltas`` for a rule
  that only proposes increments, like freeze-in). With TCR-STP in the run,
  the BPTT gradient is that of the network without STP (BPTT does not
  differentiate the fast weights).
- **update variance**: the batch is split into ``splits`` equal parts and
  the rule computes an update on each. With ``d_k`` the parts' descent
  directions (flattened, in the units of a full-batch update) the variance
  of the full-batch update is estimated as
  ``sum_p var_k(d_k[p]) / splits``, summed over every parameter entry
  (the trace of its covariance).
"""
from __future__ import annotations

import copy

import numpy as np

from ..errors import ShapeError
from ..tasks.base import TaskBatch
from ..training.objective import loss_and_grads
from ..validation import expect_shape
from .context import Context, check_context_args


def descent_direction(update) -> dict:
    """The rule's proposal in gradient convention: grads, else -deltas."""
    if update.grads:
        return dict(update.grads)
    return {k: -v for k, v in update.deltas.items()}


def flat(d: dict, names) -> np.ndarray:
    parts = [np.ravel(d[k]) for k in names if k in d]
    return np.concatenate(parts) if parts else np.zeros(0)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    with np.errstate(over="ignore", invalid="ignore"):
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0 or not (np.isfinite(na) and np.isfinite(nb)):
        return float("nan")
    return float(np.dot(a, b) / (na * nb))


def bptt_alignment(network, params, batch, noise, direction: dict) -> float:
    """Cosine of ``direction`` with the BPTT task-loss gradient on ``batch``."""
    names = [k for k in direction]
    if not names:
        return float("nan")
    shapes = network.param_shapes()
    for k in names:  # a flattened mismatch would pair entries of different synapses
        if k not in shapes:
            raise ShapeError(f"direction[{k!r}]: a {network.kind} network has no parameter {k!r}")
        expect_shape(f"direction[{k!r}]", direction[k], shapes[k], f"the shape of params[{k!r}]")
    ev = loss_and_grads(network, params, batch, noise=noise)
    return cosine(flat(direction, names), flat(ev.grads, names))


def split_batch(batch: TaskBatch, parts: int) -> list[TaskBatch]:
    """``parts`` equal sub-batches (trials ``k::parts``), dropping nothing if B divides."""
    B = batch.batch_size
    out = []
    for k in range(parts):
        idx = np.arange(k, B, parts)
        out.append(TaskBatch(batch.inputs[:, idx], batch.targets[:, idx], batch.loss_mask[:, idx],
                             {c: v[idx] for c, v in batch.trial_table.items()},
                             {e: m[:, idx] for e, m in batch.epochs.items()}, batch.dt))
    return out


def update_variance(rule, state, targets, network, params, batch, noise, stp, rng, splits=4) -> float:
    """Trace of the covariance of the rule's full-batch update, from ``splits`` sub-batches.

    Each sub-batch update is rescaled by the fraction of scored entries it
    holds, so that the parts' mean estimates the full-batch update.
    """
    check_context_args(network, params, batch, noise)  # noise is split by trials below
    B = batch.batch_size
    if splits < 2 or B < splits:
        return float("nan")
    total = max(float(batch.loss_mask.sum()), 1.0)
    vecs = []
    names = None
    for k, sub in enumerate(split_batch(batch, splits)):
        idx = np.arange(k, B, splits)
        ctx = Context(network, params, sub, noise=None if noise is None else noise[:, idx], stp=stp, rng=rng)
        u = rule.update(ctx.view(rule, targets), copy.deepcopy(state))
        d = descent_direction(u)
        names = names or sorted(d)
        # per-part losses are normalised by the part's scored entries: rescale to full-batch units
        share = max(float(sub.loss_mask.sum()), 1.0) / total
        vecs.append(flat(d, names) * share * splits)
    V = np.stack(vecs)
    if V.shape[1] == 0:
        return float("nan")
    return float(np.sum(np.var(V, axis=0, ddof=1)) / splits)

