"""Every registered space passes the space conformance suite (new spaces are picked up here)."""

import pytest

from nas.core.space import SPACES
from nas.testing.suites import SpaceSuite


@pytest.fixture(params=SPACES.names())
def registered(request):
    return request.param


class TestRegisteredSpaces(SpaceSuite):
    @pytest.fixture(autouse=True)
    def _name(self, registered):
        self.space_name = registered


class TestHyTra(SpaceSuite):
    """HyTra's own operators (uniform legal paths, legal mutation and crossover), CPU preset."""

    space_name = "hytra"


class TestFBNetV5(SpaceSuite):
    """The FBNetV5 keep/skip space (cpu preset, all three heads)."""

    space_name = "fbnetv5"
