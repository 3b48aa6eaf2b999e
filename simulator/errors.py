"""The simulator's error class, importable by every simulator module without a cycle."""
from core.errors import InputError

__all__ = ["SimulationInputError"]


class SimulationInputError(InputError):
    """A simulation parameter or input is invalid; the message names the field and the fix."""
