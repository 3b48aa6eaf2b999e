"""Re-export: the store's damage checks live in :mod:`simulator.store_integrity`, beside the store's writer."""
from simulator.store_integrity import (  # noqa: F401
    REPAIR_HINT, Damage, StoreDamagedError, check_chunks_present, describe_damage, done_flags, done_rooms,
    RoomRows, find_damage, read_checked, read_room_arrays, read_room_rows,
)
from simulator.store_integrity import __all__  # noqa: F401
