import pytest


@pytest.fixture(autouse=True)
def _small_models(settings, tmp_path):
    """Fewer trees (the tests measure behaviour, not accuracy) and a media root of the
    test's own for the model files."""
    settings.AI_TREES = 40
    settings.AI_N_JOBS = 1
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture(autouse=True)
def _fresh_cache():
    """The recommender caches segments and documents per process; each test starts without
    what an earlier test's data left there (the locmem cache outlives a test)."""
    from django.core.cache import cache

    from ai.services import recommend

    cache.clear()
    recommend._vectors.clear()
    recommend._vectors_checked["at"] = float("-inf")
