from django.contrib.auth import get_user_model

from bench import database
from bench.measure import PageRequest, logged_in_client, measure_pages
from bench.registry import scenario
from customers.models import Tag

REQUESTS = 200
WARMUP = 12


@scenario("customer_list_100k", targets={"p95_ms_max": 80, "queries_max": 8}, order=20)
def customer_list_100k() -> dict:
    """/customers/ with filters, search and sorting over 100k customers, as admin, manager, rep."""
    database.ensure_seeded_100k()
    users = get_user_model().objects.in_bulk(["admin", "nora", "alex"], field_name="username")
    admin, manager, rep = (logged_in_client(users[name]) for name in ("admin", "nora", "alex"))
    tag = Tag.objects.get(name="enterprise").pk
    alex = users["alex"].pk
    mix = [
        PageRequest("admin", admin, "/customers/"),
        PageRequest("admin", admin, "/customers/?sort=-created"),
        PageRequest("admin", admin, "/customers/?lifecycle_stage=lead&sort=company"),
        PageRequest("admin", admin, "/customers/?region=emea&engagement_level=HIGH"),
        PageRequest("admin", admin, "/customers/?q=smith"),
        PageRequest("admin", admin, "/customers/?q=acme&sort=-last_contact"),
        PageRequest("admin", admin, "/customers/?industry=software&page=3"),
        PageRequest("admin", admin, f"/customers/?tag={tag}"),
        PageRequest("admin", admin, f"/customers/?owner={alex}&sort=name"),
        PageRequest("admin", admin, "/customers/?sort=owner&page=40"),
        PageRequest("admin", admin, "/customers/?lifecycle_stage=customer&sort=-stage"),
        PageRequest("nora", manager, "/customers/"),
        PageRequest("nora", manager, "/customers/?q=garcia&sort=company"),
        PageRequest("nora", manager, f"/customers/?owner={alex}&engagement_level=VIP"),
        PageRequest("nora", manager, "/customers/?region=apac&sort=-last_contact&page=2"),
        PageRequest("alex", rep, "/customers/"),
        PageRequest("alex", rep, "/customers/?lifecycle_stage=prospect&sort=-created"),
        PageRequest("alex", rep, "/customers/?q=smith&industry=finance"),
        PageRequest("alex", rep, f"/customers/?tag={tag}&sort=company"),
        PageRequest("alex", rep, "/customers/?sort=region&page=5"),
    ]
    return measure_pages(mix, requests=REQUESTS, warmup=WARMUP)
