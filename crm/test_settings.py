"""Settings for the test suite: real PostgreSQL and Redis on 127.0.0.1 unless overridden."""

import os

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/crm")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")

from crm.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Each xdist worker's websockets apart: the test databases of two workers have users with
# the same ids, whose groups would otherwise meet in the shared Redis.
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = (  # noqa: F405
    f"crm-test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
)
