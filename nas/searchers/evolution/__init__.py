"""Evolutionary searchers built from small operators."""
