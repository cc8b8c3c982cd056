"""bioplastic: biologically plausible learning in recurrent rate networks.

Quick start::

    import bioplastic as bp
    task = bp.get_task("flipflop")
    net = bp.make_network("lfrnn", task.n_inputs, task.n_outputs, n_units=64, g=1.5)
    result = bp.train(net, task, iterations=500, lambda_tcr=0.1, seed=0)
    print(result.summary())
"""
from ._kernel_cache import drop_stale_kernel_cache

drop_stale_kernel_cache()  # before any kernel loads its cache: numba does not see edits to callees
from . import config
from .memory import keep_freed_memory, tune_if_wanted

tune_if_wanted(default=False)  # malloc is the host process's: tuned only with BIOPLASTIC_TUNE_MALLOC=1
from ._version import __version__
from .errors import (BioplasticError, ConfigError, DivergenceError, SchemaError, ShapeError,
                     UnknownNameError)
from .io import read_run, write_run
from .io.nwb_read import read_nwb
from .networks import list_models, make_network
from .plugins import refresh_plugins
from .tasks import get_task, list_tasks
from .training import TrainResult, train

__all__ = ["__version__", "config", "BioplasticError", "ConfigError", "DivergenceError", "SchemaError",
           "ShapeError", "UnknownNameError", "read_run", "write_run", "read_nwb", "list_models", "make_network",
           "get_task", "list_tasks", "TrainResult", "train", "keep_freed_memory", "refresh_plugins"]
