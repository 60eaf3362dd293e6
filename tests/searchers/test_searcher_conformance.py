"""Every registered searcher passes the ask/tell conformance suite."""

from nas.testing.suites import SearcherSuite


class TestRandom(SearcherSuite):
    searcher_name = "random"
    learns = False


class TestEvolution(SearcherSuite):
    searcher_name = "evolution"
    searcher_options = {"population_size": 8, "sample_size": 3}


class TestScaling(SearcherSuite):
    """The dummy space has depth and width axes but no resolution; past its grid the searcher mutates."""

    searcher_name = "scaling"


class TestNASNetRL(SearcherSuite):
    """A small controller updating every 5 tells, so the suite exercises PPO updates and replay."""

    searcher_name = "nasnet_rl"
    searcher_options = {"hidden_size": 16, "batch_size": 5}


class TestOptunaTPE(SearcherSuite):
    searcher_name = "optuna"
    searcher_options = {"sampler": "tpe", "startup_trials": 5}


class TestPredictorEvolution(SearcherSuite):
    """A small pool and few random samples, so the GP ranks candidates from the fourth tell on."""

    searcher_name = "predictor_evolution"
    searcher_options = {"init_samples": 3, "candidates": 20}
