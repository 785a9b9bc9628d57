import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
# The web's statement timeout (crm/settings.py): only the processes serving pages get it.
os.environ.setdefault(
    "STATEMENT_TIMEOUT_SECONDS", os.environ.get("WEB_STATEMENT_TIMEOUT_SECONDS", "5")
)
application = get_wsgi_application()
