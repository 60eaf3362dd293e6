"""Reusable test suites (pytest-style classes to subclass) and checks for backends, spaces, searchers."""

from nas.testing.parity import BackendParitySuite, check_parity, space_for_tests

__all__ = ["BackendParitySuite", "check_parity", "space_for_tests"]
