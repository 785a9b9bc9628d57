"""The reactions file names only functions that exist, and the values a reaction carries
across apps are the receiving app's."""

import pytest
from django.utils.module_loading import import_string

from crm import reactions


@pytest.mark.parametrize(
    "path",
    sorted(
        {path for paths in reactions.REACTIONS.values() for path in paths}
        | {path for paths in reactions.ANSWERS.values() for path in paths}
    ),
)
def test_every_listed_reaction_and_answer_imports(path):
    assert callable(import_string(path))


def test_every_event_and_question_has_its_entry():
    assert set(reactions.REACTIONS) == set(reactions.Event)
    assert set(reactions.ANSWERS) == set(reactions.Question)


def test_lead_follow_up_priorities_are_sales_task_priorities():
    from django.utils import timezone

    from leads.models import Grade
    from leads.services.workflows import _tasks_for
    from sales.models import Task
    from tests.factories import CustomerFactory

    customer = CustomerFactory.build(name="Ada Lovelace")
    for grade in (Grade.HOT, Grade.WARM):
        for _title, priority, _due in _tasks_for(grade, customer, timezone.now()):
            assert priority in Task.Priority.values


def test_forecast_scope_kinds_are_the_snapshot_scopes():
    from crm.permissions import forecast
    from sales.models import ForecastSnapshot

    kinds = {forecast.REP, forecast.TEAM, forecast.ALL}
    assert kinds == set(ForecastSnapshot.Scope.values)
