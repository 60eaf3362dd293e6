"""Every registered searcher passes the ask/tell conformance suite."""

from nas.testing.suites import SearcherSuite


class TestRandom(SearcherSuite):
    searcher_name = "random"


class TestEvolution(SearcherSuite):
    searcher_name = "evolution"
    searcher_options = {"population_size": 8, "sample_size": 3}
