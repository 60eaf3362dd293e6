"""Evaluators: train, tabular, cost, proxy. Each module registers itself in ``EVALUATORS``."""

from nas.evaluators.base import EVALUATORS, EvalContext, Evaluator, make_evaluator

__all__ = ["EVALUATORS", "EvalContext", "Evaluator", "make_evaluator"]
