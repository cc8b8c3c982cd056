import numpy as np
import pytest

from bioplastic import config


@pytest.fixture(autouse=True)
def _quiet_and_reset():
    """No progress bars in tests; config switches restored after each test."""
    config.set(progress=False)
    yield
    config.reset()


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
