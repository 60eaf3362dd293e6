"""Errors a user can cause; the CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input (config, file, name); shown without a traceback."""


class UnknownNameError(UserError, KeyError):
    """A name that is not registered; the message lists the valid choices."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class GenotypeError(UserError, ValueError):
    """A genotype that is malformed, from another space or from another space version."""
