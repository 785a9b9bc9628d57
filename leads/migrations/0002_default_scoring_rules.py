from django.db import migrations

from leads.defaults import default_rules


def create_rules(apps, schema_editor):
    ScoringRule = apps.get_model("leads", "ScoringRule")
    if not ScoringRule.objects.exists():
        ScoringRule.objects.bulk_create(default_rules(ScoringRule))


class Migration(migrations.Migration):
    dependencies = [("leads", "0001_initial")]

    operations = [migrations.RunPython(create_rules, migrations.RunPython.noop)]
