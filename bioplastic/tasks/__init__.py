"""Tasks: seeded batches of trials, registered by name.

Built-ins: ``'flipflop'`` (:class:`FlipFlop`), ``'delayed_addition'``
(:class:`DelayedAddition`) and ``'evidence_accumulation'``
(:class:`EvidenceAccumulation`). A new task subclasses :class:`Task` and is
registered with :func:`register_task`.

Examples
--------
>>> import numpy as np
>>> from bioplastic.tasks import get_task, list_tasks
>>> list_tasks()
['delayed_addition', 'evidence_accumulation', 'flipflop']
>>> task = get_task("flipflop", n_steps=50)
>>> batch = task.sample(16, np.random.default_rng(1))
>>> batch.T, batch.batch_size
(50, 16)
"""
from __future__ import annotations

from ..errors import ConfigError
from ..registry import Registry
from .base import Task, TaskBatch
from .delayed_addition import DelayedAddition
from .evidence_accumulation import EvidenceAccumulation
from .flipflop import FlipFlop

__all__ = [
    "TASKS",
    "DelayedAddition",
    "EvidenceAccumulation",
    "FlipFlop",
    "Task",
    "TaskBatch",
    "get_task",
    "list_tasks",
    "register_task",
]

#: Every known task class, by lower-case name.
TASKS = Registry("task")


def register_task(cls, *, overwrite: bool = False):
    """Register a :class:`Task` subclass under its ``name``; usable as a decorator.

    Parameters
    ----------
    cls : type
        A subclass of :class:`Task` with a non-empty string ``name``.
    overwrite : bool, default False
        Replace a different class already registered under that name.

    Returns
    -------
    type
        ``cls``, unchanged.

    Raises
    ------
    ConfigError
        If ``cls`` is not a Task subclass, has no name, or the name is taken.
    """
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise ConfigError(f"register_task expects a subclass of Task, got {cls!r}")
    if not isinstance(cls.name, str) or not cls.name:
        raise ConfigError(f"task class {cls.__name__} must set a non-empty string `name`")
    return TASKS.register(cls.name, cls, overwrite=overwrite)


def get_task(name: str, **settings) -> Task:
    """Build the task registered as ``name`` with ``settings``.

    Raises
    ------
    UnknownNameError
        If no task has that name (the message lists the known ones).
    ConfigError
        On an unknown or invalid setting.
    """
    return TASKS.get(name)(**settings)


def list_tasks() -> list[str]:
    """Return the registered task names, sorted."""
    return TASKS.names()


for _cls in (FlipFlop, DelayedAddition, EvidenceAccumulation):
    register_task(_cls)
del _cls
