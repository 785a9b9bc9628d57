"""django-rest-knox's own migrations create knox_authtoken even though KNOX_TOKEN_MODEL
swaps it for api.DeviceToken. Nothing uses that table, and its foreign key to auth_user
made Django's flush (TRUNCATE of the known tables, e.g. between transactional tests) fail:
drop it."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_initial"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [
        migrations.RunSQL("DROP TABLE IF EXISTS knox_authtoken", migrations.RunSQL.noop),
    ]
