"""Exceptions raised by bioplastic.

Every error a user can cause derives from :class:`BioplasticError`, so a
script can catch the whole family; each also derives from the matching
built-in (``ValueError``, ``KeyError``...) so generic handlers keep working.
"""


class BioplasticError(Exception):
    """Base class of every error bioplastic raises on purpose."""


class ConfigError(BioplasticError, ValueError):
    """A setting, spec file or argument is invalid (bad value, unknown key)."""


class ShapeError(BioplasticError, ValueError):
    """An array has the wrong shape, dtype or contains non-finite values."""


class UnknownNameError(BioplasticError, KeyError):
    """A name (task, model, rule, protocol...) is not registered."""

    def __str__(self):  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class DivergenceError(BioplasticError, FloatingPointError):
    """Training produced a non-finite loss or parameter.

    Attributes
    ----------
    iteration : int
        Training iteration at which the divergence was detected.
    result : object or None
        The partial training result (history and checkpoints so far).
    """

    def __init__(self, message, iteration=None, result=None):
        super().__init__(message)
        self.iteration = iteration
        self.result = result


class SchemaError(BioplasticError, ValueError):
    """A file does not follow the bioplastic run-file schema."""
