"""Tasks: seeded batches of trials, registered by name.

Built-ins: ``'flipflop'`` (:class:`FlipFlop`), ``'delayed_addition'``
(:class:`DelayedAddition`) and ``'evidence_accumulation'``
(:class:`EvidenceAccumulation`). A new task subclasses :class:`Task` and is
registered with :func:`register_task`, or, from a package, through the
entry-point group ``bioplastic.tasks`` (loaded the first time a name is not
a built-in, or when tasks are listed; see docs/extending.md).

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

from ..registry import Registry, check_plugin_class
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
    "validate_task_class",
]

#: Entry-point group of third-party tasks.
GROUP = "bioplastic.tasks"


def validate_task_class(cls, name: str | None = None) -> str:
    """Check that ``cls`` can serve as a task; return its registry name.

    Parameters
    ----------
    cls : object
        The candidate class.
    name : str or None
        The name it is registered under (an entry point's name), which must
        equal ``cls.name``; None: not checked.

    Raises
    ------
    ConfigError
        If ``cls`` is not a Task subclass, has no name, leaves an abstract
        method (``_sample``, ``_accuracy``) unimplemented, or is registered
        under another name.
    """
    return check_plugin_class(cls, Task, "name", "task", name)


#: Every known task class, by lower-case name (plugins join on first lookup).
TASKS = Registry("task", group=GROUP, validate=validate_task_class)


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
        If ``cls`` is not a Task subclass, has no name, is abstract, or the
        name is taken.
    """
    return TASKS.register(validate_task_class(cls), cls, overwrite=overwrite)


def get_task(name: str, **settings) -> Task:
    """Build the task registered as ``name`` with ``settings``.

    Raises
    ------
    UnknownNameError
        If no task has that name (the message lists the known ones, and
        says why a plugin of that name failed to load).
    ConfigError
        On an unknown or invalid setting.
    """
    return TASKS.get(name)(**settings)


def list_tasks() -> list[str]:
    """Return the registered task names (built-ins and plugins), sorted."""
    return TASKS.names()


for _cls in (FlipFlop, DelayedAddition, EvidenceAccumulation):
    register_task(_cls)
del _cls
