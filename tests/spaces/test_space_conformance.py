"""Every registered space passes the space conformance suite (new spaces are picked up here).

Each space runs once, with its ``small`` preset where it has one and its default preset otherwise (``cpu``
for HyTra and FBNetV5, whose own operators are exercised by the same checks).
"""

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
