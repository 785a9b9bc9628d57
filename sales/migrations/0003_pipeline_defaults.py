from django.db import migrations
from django.db.models import Max, OuterRef, Subquery


def forwards(apps, schema_editor):
    from sales.defaults import RULE_DEFAULTS, STAGE_DEFAULTS

    StageSetting = apps.get_model("sales", "StageSetting")
    AutomationRule = apps.get_model("sales", "AutomationRule")
    Sale = apps.get_model("sales", "Sale")
    SaleActivity = apps.get_model("sales", "SaleActivity")
    for status, (probability, max_days, titles) in STAGE_DEFAULTS.items():
        StageSetting.objects.get_or_create(
            status=status,
            defaults={
                "base_probability": probability,
                "max_days_in_stage": max_days,
                "task_titles": titles,
            },
        )
    if not AutomationRule.objects.exists():
        for from_status, condition, days, to_status in RULE_DEFAULTS:
            AutomationRule.objects.create(
                from_status=from_status, condition=condition, days=days, to_status=to_status
            )
    latest = (
        SaleActivity.objects.filter(sale=OuterRef("pk"))
        .values("sale")
        .annotate(latest=Max("occurred_at"))
        .values("latest")
    )
    Sale.objects.update(last_activity_at=Subquery(latest))


class Migration(migrations.Migration):
    dependencies = [("sales", "0002_pipeline")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
