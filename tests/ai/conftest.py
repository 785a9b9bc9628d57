import pytest


@pytest.fixture(autouse=True)
def _small_models(settings, tmp_path):
    """Fewer trees (the tests measure behaviour, not accuracy) and a media root of the
    test's own for the model files."""
    settings.AI_TREES = 40
    settings.AI_N_JOBS = 1
    settings.MEDIA_ROOT = str(tmp_path / "media")
