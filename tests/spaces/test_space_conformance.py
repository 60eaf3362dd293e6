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
