"""Hydra sweeper plugin ``hydra/sweeper=nas``: our ask/tell searchers drive any Hydra app's multirun."""
