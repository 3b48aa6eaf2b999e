"""experiments.realism_ablation: paired per-effect stores, and costs judged by paired room-bootstrap intervals."""
from __future__ import annotations

import numpy as np
import pytest

from core.errors import InputError
from experiments import realism_ablation as ra
from simulator.realism import REALISM_EFFECTS, realism_effects


def test_each_variant_draws_exactly_its_effects():
    configs = ra.variant_configs(rooms=2, frames_per_room=1, seed=3, max_order=1, kernel_samples=2400,
                                 minor_fraction=0.4)
    assert list(configs) == ["ideal", *(f"only {e}" for e in REALISM_EFFECTS), "realistic without noise", "realistic"]
    full = realism_effects("realistic")
    off = realism_effects("ideal")
    for name, config in configs.items():
        on = {"ideal": set(), "realistic": set(REALISM_EFFECTS),
              "realistic without noise": set(REALISM_EFFECTS) - {"noise"}}.get(name, {name.removeprefix("only ")})
        for effect in REALISM_EFFECTS:
            value = getattr(config.simulation, effect)
            drawn = value is not None and value is not False
            assert drawn == (effect in on), (name, effect)
            if drawn:
                assert value == full[effect]
        assert config.split == (0.0, 0.0, 1.0) and off == {}
    # the scenes are the same in every store: only the simulation's effects differ
    first = configs["ideal"]
    for config in configs.values():
        assert (config.seed, config.rooms, config.frames_per_room) == (3, 2, 1)
        assert config.room_sampler == first.room_sampler and config.subject_sampler == first.subject_sampler


def _errors(rng, rooms, shift_per_room):
    base = rng.uniform(10, 20, size=len(rooms))
    return base, base + shift_per_room[rooms]


def test_costs_are_paired_differences_and_count_only_when_their_interval_excludes_zero():
    rng = np.random.default_rng(0)
    rooms = np.repeat(np.arange(30), 4)
    ideal, worse = _errors(rng, rooms, np.full(30, 5.0))             # every room 5 cm worse
    _, mixed = _errors(np.random.default_rng(0), rooms, np.where(np.arange(30) % 2 == 0, 2.0, -2.0))
    errors = {"m": {"ideal": {"errors_cm": ideal, "rooms": rooms},
                    "worse": {"errors_cm": worse, "rooms": rooms},
                    "mixed": {"errors_cm": mixed, "rooms": rooms}}}
    rows = {r["variant"]: r for r in ra.cost_rows(errors, resamples=500)}
    assert rows["worse"]["cost_cm"]["estimate"] == pytest.approx(5.0, abs=1e-12)
    assert rows["worse"]["cost_cm"]["low"] == pytest.approx(5.0, abs=1e-9)     # paired: the rooms' noise cancels
    assert rows["worse"]["costs"] and not rows["mixed"]["costs"] and not rows["ideal"]["costs"]
    assert rows["mixed"]["cost_cm"]["low"] < 0 < rows["mixed"]["cost_cm"]["high"]
    assert rows["worse"]["mpjpe_cm"]["estimate"] == pytest.approx(worse.mean())
    table = ra.markdown(list(rows.values()), "# t")
    assert "| worse | " in table and "**costs**" in table.split("| worse |")[1].splitlines()[0]
    with pytest.raises(InputError, match="not the ideal store's"):
        ra.cost_rows({"m": {"ideal": {"errors_cm": ideal, "rooms": rooms},
                            "other": {"errors_cm": worse, "rooms": rooms[::-1]}}})


def test_a_bad_checkpoint_is_refused_before_any_store(tmp_path, capsys):
    out = tmp_path / "effects"
    assert ra.main(["--checkpoint", "nothing", "--out", str(out)]) == 2
    assert "NAME=PATH" in capsys.readouterr().err
    assert ra.main(["--checkpoint", f"m={tmp_path / 'missing.pt'}", "--out", str(out)]) == 2
    assert not out.exists()
