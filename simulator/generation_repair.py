"""Damage in a store found and repaired: ``--verify`` lists the damaged rooms, ``--repair`` regenerates exactly them.

A repair reads the generator configuration the store records and rewrites the damaged rooms in
place (each room is drawn from its own seed, so a regenerated room equals the lost one).
"""
from __future__ import annotations

from core.errors import InputError
from simulator.generation_config import GenerationConfig, GenerationError, recorded_identity
from simulator.generation_run import _run_rooms, check_ray_address, check_workers
from simulator.generation_store import check_writable, open_store

__all__ = ["recorded_config", "repair", "verify"]


def recorded_config(root, url: str, flag: str) -> GenerationConfig:
    """The GenerationConfig a store records (its rooms are regenerated from it)."""
    recorded = root.attrs.get("generator_config")
    try:
        return GenerationConfig(**recorded_identity(recorded))
    except (TypeError, InputError) as err:
        raise GenerationError(f"{flag} {url}: the store's recorded generator_config cannot be used ({err}); "
                              f"regenerate the store") from None


def verify(url: str, progress: bool = False, flag: str = "--verify") -> dict:
    """Every done room's chunks checked (``simulator.store_integrity.find_damage``); a report dict."""
    from simulator.store_integrity import find_damage

    root = open_store(url, flag)
    rooms, damage = find_damage(root, progress=progress)
    return {"store": url, "rooms": int(root.attrs["rooms"]), "rooms_done": len(rooms),
            "damaged_rooms": sorted({d.room for d in damage}), "damage": damage}


def repair(url: str, workers: int | None = None, address: str | None = None, progress: bool = False,
           body_model=None) -> dict:
    """Regenerate exactly the damaged rooms of ``url`` from its recorded configuration, then verify.

    The rooms are rewritten in place (their done flags stay set: an interrupted repair leaves
    rooms that are as damaged as before or repaired, and running it again finishes it).
    Returns {"store", "repaired_rooms", "damaged_rooms" (left after the repair), "damage"}.
    """
    workers = check_workers(workers, address)
    if address:
        check_ray_address(address)
    root = open_store(url, "--repair")
    config = recorded_config(root, url, "--repair")
    check_writable(url, "--repair")
    before = verify(url, progress, flag="--repair")
    _run_rooms(config, url, before["damaged_rooms"], workers, address, progress, body_model)
    after = verify(url, progress, flag="--repair")
    return {"store": url, "repaired_rooms": before["damaged_rooms"], "damaged_rooms": after["damaged_rooms"],
            "damage": after["damage"]}


def _print_damage(report: dict) -> None:
    from simulator.store_integrity import REPAIR_HINT

    for item in report["damage"]:
        print(f"  {item.describe()}")
    if report["damage"]:
        print("fix: " + REPAIR_HINT.format(url=report["store"]).split(" and ", 1)[1])

