"""Django admin names every model in plain English: no "Send batchs"."""

from django.apps import apps

# Words whose plural is not the singular plus "s".
IRREGULAR_ENDINGS = ("ch", "sh", "s", "x", "z")


def test_every_models_plural_reads_as_english():
    wrong = []
    for model in apps.get_models():
        if model.__module__.split(".")[0] not in {
            "crm",
            "customers",
            "leads",
            "sales",
            "campaigns",
            "documents",
            "analytics",
        }:
            continue
        singular, plural = str(model._meta.verbose_name), str(model._meta.verbose_name_plural)
        if singular.endswith(IRREGULAR_ENDINGS) and plural == singular + "s":
            wrong.append(f"{model.__name__}: {plural}")
        if (
            singular.endswith("y")
            and not singular.endswith(("ay", "ey", "oy", "uy"))
            and (plural == singular + "s")
        ):
            wrong.append(f"{model.__name__}: {plural}")
    assert wrong == []
