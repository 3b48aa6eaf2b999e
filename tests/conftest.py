"""Shared fixtures. Body models are expensive to build (Anny compiles Warp kernels on first use,
~50 s, cached on disk after), so each is built once per test session."""
from __future__ import annotations

import os

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def anny_model():
    from bodies import load_body_model

    return load_body_model("anny")


@pytest.fixture(scope="session")
def anny_sampler(anny_model):
    from bodies import PoseSampler

    return PoseSampler(anny_model)
