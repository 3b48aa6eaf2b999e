"""One direction of dependency: every module imports only its own package or packages below it.

The order follows the data flow: core, then bodies and rooms (siblings: neither imports the other),
then simulator, pipeline, network, experiments. Every import is read from the source (``ast``),
including the lazy ones inside functions, so a cycle cannot hide in a function body.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# package -> its level; a module may import packages of a lower level, or its own package.
LEVEL = {"core": 0, "bodies": 1, "rooms": 1, "simulator": 2, "pipeline": 3, "network": 4, "experiments": 5}
# Sibling imports allowed between packages of one level: none today (rooms and bodies never
# import each other); were one needed, allow only that one direction here.
SIBLING_IMPORTS: set[tuple[str, str]] = set()


def _imports(path: Path):
    """(line, imported top-level package) of every import in ``path``, at any depth."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def _project_imports():
    for package in LEVEL:
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, target in _imports(path):
                if target in LEVEL and target != package:
                    yield package, path.relative_to(ROOT), line, target


def test_every_import_follows_the_layer_order():
    wrong = [f"{path}:{line} ({package}, level {LEVEL[package]}) imports {target} (level {LEVEL[target]})"
             for package, path, line, target in _project_imports()
             if LEVEL[target] > LEVEL[package]
             or (LEVEL[target] == LEVEL[package] and (package, target) not in SIBLING_IMPORTS)]
    assert not wrong, "imports against the layer order core < bodies, rooms < simulator < pipeline < network < " \
                      "experiments:\n" + "\n".join(wrong)


def test_no_cycle_between_packages():
    edges: dict[str, set[str]] = {p: set() for p in LEVEL}
    where: dict[tuple[str, str], str] = {}
    for package, path, line, target in _project_imports():
        edges[package].add(target)
        where.setdefault((package, target), f"{path}:{line}")

    def cycle_from(start, node, trail):
        for nxt in sorted(edges[node]):
            if nxt == start:
                return trail + [nxt]
            if nxt not in trail:
                found = cycle_from(start, nxt, trail + [nxt])
                if found:
                    return found
        return None

    for package in LEVEL:
        found = cycle_from(package, package, [package])
        assert not found, "package cycle " + " -> ".join(found) + ": " + ", ".join(
            where[(a, b)] for a, b in zip(found, found[1:]))


def test_moved_modules_keep_their_old_import_paths():
    """Deconvolution, the detector model and the store contract moved down into simulator; the
    pipeline paths users import still give the same objects."""
    import pipeline.deconvolution
    import pipeline.detector
    import pipeline.store_format
    import pipeline.store_integrity
    import simulator.deconvolution
    import simulator.detector
    import simulator.store_format
    import simulator.store_integrity

    for old, new in ((pipeline.deconvolution, simulator.deconvolution), (pipeline.detector, simulator.detector),
                     (pipeline.store_format, simulator.store_format),
                     (pipeline.store_integrity, simulator.store_integrity)):
        for name in old.__all__:
            assert getattr(old, name) is getattr(new, name), f"{old.__name__}.{name}"


def test_the_generation_config_holds_the_configs_it_is_built_from():
    """One source per setting: the flat flags set fields of the held configurations, the recorded
    identity is the flat dict of before, and a held field changed otherwise is recorded too."""
    from rooms import RoomSamplerConfig
    from simulator.generate import GenerationConfig
    from simulator.recording import SimulationConfig

    config = GenerationConfig(max_order=3, multipath=False, rig="co-located", min_floor_m=6.0)
    assert config.simulation.max_order == 3 and config.simulation.body_room_multipath is False
    assert config.room_sampler.colocated_probability == 1.0 and config.room_sampler.min_floor_side_m == 6.0
    assert config.simulation.transducer_responses and config.simulation.clock_offset_max_samples == 0.5
    assert GenerationConfig(**config.identity()) == config
    assert not any("." in key for key in config.identity())
    custom = GenerationConfig(simulation=SimulationConfig(room_response_s=0.2), room_sampler=RoomSamplerConfig())
    assert custom.identity()["simulation.room_response_s"] == 0.2
    assert custom.identity()["transducer_responses"] is False   # a flat key: the flag's name
    assert GenerationConfig(**custom.identity()) == custom
