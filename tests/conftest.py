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


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory, anny_model):
    """A tiny synthetic store (``tests.helpers.TINY_STORE_CONFIG``), generated once per session in this
    process (no Ray). Read it only: a test that damages or extends a store copies it first
    (``shutil.copytree(tiny_store, tmp_path / ...)``)."""
    from simulator.generate import GenerationConfig, generate
    from tests.helpers import TINY_STORE_CONFIG

    out = tmp_path_factory.mktemp("tiny_store") / "tiny.zarr"
    summary = generate(GenerationConfig(**TINY_STORE_CONFIG), str(out), workers=0, progress=False,
                       body_model=anny_model)
    assert summary["rooms_done"] == TINY_STORE_CONFIG["rooms"]
    return out


@pytest.fixture(scope="session")
def posekernel_root(tmp_path_factory):
    """The PoseKernel dataset layout (``tests.helpers``): 3 environments of 2-3 frames, the third with its
    sensors moved, as a second room would have them."""
    import numpy as np

    from tests.helpers import SENSORS, gnd49, reflector_kernel

    root = tmp_path_factory.mktemp("real") / "PoseKernel"
    sensors = dict(SENSORS, environment3=SENSORS["environment1"] + [0.1, 0.0, 0.2])
    for e, env in enumerate(["environment1", "environment2", "environment3"], start=1):
        (root / env).mkdir(parents=True)
        np.save(root / env / "audio_sensor_loc.npy", sensors[env])
        for name in range(3 if e == 1 else 2):
            folder = root / env / str(name)
            folder.mkdir()
            joints = gnd49(name, e)
            np.save(folder / "gnd.npy", joints)
            np.save(folder / "rir.npy", reflector_kernel(sensors[env], joints[39]))
    return root
