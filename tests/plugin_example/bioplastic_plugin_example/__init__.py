"""Example bioplastic rule plugin (see docs/plugins.md)."""
from .rules import DeltaReadout

__all__ = ["DeltaReadout"]
