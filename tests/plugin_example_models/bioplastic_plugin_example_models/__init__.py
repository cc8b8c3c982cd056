"""Example bioplastic task and model plugins (see docs/extending.md)."""
from .models import NumpyRNN
from .tasks import HoldBit

__all__ = ["HoldBit", "NumpyRNN"]
