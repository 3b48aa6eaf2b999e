"""The README's picture of bodies: adults and minors doing the paper's activities, to one scale.

    python -m experiments.figure_bodies --png docs/bodies.png
"""
from __future__ import annotations

import argparse

import numpy as np

CAST = [  # (age, sex, activity, view)
    (34, "male", "walking", "side"), (8, "female", "sitting", "side"), (15, "male", "drinking", "front"),
    (27, "female", "jumping", "front"), (11, "male", "squatting", "side"), (62, "female", "reaching", "front"),
]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--png", default="docs/bodies.png")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bodies import PoseSampler, SubjectSampler, load_body_model
    from bodies.preview import draw_body

    rng = np.random.default_rng(args.seed)
    sampler = PoseSampler(load_body_model("anny"))
    fig, axes = plt.subplots(1, len(CAST), figsize=(2.4 * len(CAST), 4.2), dpi=110, sharey=True)
    for ax, (age, sex, activity, view) in zip(axes, CAST):
        subject = SubjectSampler().sample(rng, age_years=age, sex=sex)
        body = sampler.sample(rng, subject, activity, heading_rad=-np.pi / 2)
        draw_body(ax, body, view)
        ax.set_ylim(-0.05, 2.25)
        ax.set_title(f"{activity}\nage {age}, {body.stature_m:.2f} m", fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("height above floor (m)")
    fig.tight_layout()
    fig.savefig(args.png)
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
