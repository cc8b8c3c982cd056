"""Every training setting of a run checked at once, before any output exists (SPEC 12).

:mod:`bioplastic.preflight` holds the single checks; this module puts them
together with the training loops' own defaults, which it reads from their
signatures, so that the command line and sweeps refuse a bad run before
they create its folder.
"""
from __future__ import annotations

import inspect

from ..preflight import check_run_objects, check_train_settings
from .local import train_local
from .loop import train


def check_training(network, task, settings: dict, *, seed=None, local=False) -> dict:
    """Every training setting of a run checked at once, before any output exists.

    What :func:`bioplastic.train` (or ``train_local`` with ``local``) would
    refuse once started: the objects it builds (:func:`~bioplastic.preflight.check_run_objects`)
    and every value :func:`~bioplastic.preflight.check_train_settings` knows. The command line and
    sweeps call it before they create an output folder, so a bad value
    leaves nothing behind; a setting the checks learn later is covered here
    without a list of names to keep in step.

    Parameters
    ----------
    network, task
        The run's network and task.
    settings : dict
        Keyword arguments of the training loop (defaults filled in here).
    seed : int or None
        The run's seed (None: drawn later).
    local : bool
        True for :func:`~bioplastic.training.local.train_local`.

    Returns
    -------
    dict
        ``settings`` with the loop's defaults filled in.
    """
    fit = train_local if local else train
    full = {k: p.default for k, p in inspect.signature(fit).parameters.items()
            if p.default is not inspect.Parameter.empty}
    full.update(settings)
    check_run_objects(network, task, full)  # first: the memory estimate reads some of these values
    # run_file: its folder is made after these checks; seed and local: given apart
    known = set(inspect.signature(check_train_settings).parameters) - {"network", "task", "seed", "run_file",
                                                                        "local"}
    picked = {k: v for k, v in full.items() if k in known}
    if not isinstance(full.get("optimizer"), str):  # an Optimizer object carries its own lr
        picked.pop("lr", None)
    check_train_settings(network, task, seed=seed, local=local, **picked)
    return full
