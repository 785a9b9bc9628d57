"""analytics.selectors.periods: calendar months in the local time zone."""

from datetime import UTC, datetime

import pytest

from analytics.selectors.periods import month_start
from tests.analytics.selectors.helpers import (
    MID_MARCH,
)

pytestmark = pytest.mark.django_db


def test_month_start_goes_back_over_years(settings):
    settings.TIME_ZONE = "UTC"
    assert month_start(MID_MARCH, 3) == datetime(2024, 12, 1, tzinfo=UTC)
    assert month_start(MID_MARCH, 14) == datetime(2024, 1, 1, tzinfo=UTC)
