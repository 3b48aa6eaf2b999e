"""Errors raised by ``bodies``: each names the field at fault and how to fix it."""

from core.errors import InputError


class BodyInputError(InputError):
    """A shape, pose or placement parameter is invalid."""


class BodyModelFilesMissing(InputError, FileNotFoundError):
    """A licence-gated body model (SMPL, SMPL-X) was asked for but its files are not on disk."""
