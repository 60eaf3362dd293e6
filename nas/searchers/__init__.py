"""Searchers (ask/tell). Each module registers its searcher in ``SEARCHERS`` on import."""

from nas.searchers.base import SEARCHERS, Objective, Searcher

__all__ = ["SEARCHERS", "Objective", "Searcher"]
