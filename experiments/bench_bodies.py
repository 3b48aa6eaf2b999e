"""Benchmark: Anny's first-load cost and posed bodies per second.

    python -m experiments.bench_bodies [--repeats 5] [--json out.json]

Measures, on this machine:
- the cold first build of the Anny body model (``bodies.anny_model.AnnyBodyModel``: Anny's model data built
  into an empty cache, in a fresh process; Warp is not loaded), and a warm build (the cache filled);
- posing throughput of the bare model (a batch of 64 bodies in one forward pass);
- end-to-end throughput of ``PoseSampler.sample`` (subject shape solve, candidate poses,
  interpenetration check, grounding and placement), per activity.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

from experiments.reporting import report

# the body model as the project builds it (AnnyBodyModel: Anny with its plain-torch skinning, Warp not loaded)
_BUILD = ("import time; t=time.perf_counter(); from bodies.anny_model import AnnyBodyModel; AnnyBodyModel(); "
          "print(time.perf_counter()-t)")


def _build_seconds(cache_dir: str | None) -> float:
    env = dict(os.environ)
    if cache_dir is not None:  # empty caches: Anny rebuilds its model data (and Warp would recompile, if loaded)
        env["ANNY_CACHE_DIR"] = os.path.join(cache_dir, "anny")
        env["WARP_CACHE_PATH"] = os.path.join(cache_dir, "warp")
    out = subprocess.run([sys.executable, "-c", _BUILD], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-cold", action="store_true", help="skip the cold build (about a minute)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    import torch

    from bodies import ACTIVITIES, PoseSampler, SubjectSampler, load_body_model
    from bodies.model import SEGMENTS

    results: dict = {"machine": machine(), "torch_threads": torch.get_num_threads()}
    if not args.skip_cold:
        with tempfile.TemporaryDirectory() as cache:
            results["first_build_cold_s"] = _build_seconds(cache)
    results["build_warm_s"] = _build_seconds(None)

    model = load_body_model("anny")
    rng = np.random.default_rng(0)
    subjects = [SubjectSampler().sample(rng) for _ in range(64)]
    identity = np.tile(np.eye(3), (64, len(SEGMENTS), 1, 1))
    model.forward(subjects, identity)  # shapes solved and cached
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        model.forward(subjects, identity)
        times.append(time.perf_counter() - t)
    results["batch64_forward_s"] = float(np.median(times))
    results["bodies_per_s_batched"] = 64 / results["batch64_forward_s"]

    sampler = PoseSampler(model)
    per_activity = {}
    for activity in ACTIVITIES:
        t = time.perf_counter()
        for _ in range(args.repeats):
            sampler.sample(rng, SubjectSampler().sample(rng), activity)
        per_activity[activity] = args.repeats / (time.perf_counter() - t)
    results["sampler_bodies_per_s"] = {k: round(v, 2) for k, v in per_activity.items()}
    results["sampler_bodies_per_s_mean"] = float(np.mean(list(per_activity.values())))

    return report(results, args.json)


if __name__ == "__main__":
    main()
