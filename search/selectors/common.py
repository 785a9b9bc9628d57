"""What every way of searching shares: the indexed models as each user sees them (their
permission filters), the hits and results, the boosts, and marking words in Python."""

from dataclasses import dataclass, field
from datetime import timedelta

from campaigns.models import EmailCampaign, EmailTemplate
from crm.permissions import visible_customers, visible_sales, visible_tasks
from crm.permissions.campaigns import visible_campaigns, visible_templates
from crm.permissions.documents import visible_documents
from crm.roles import is_manager_or_admin
from customers.models import Customer
from documents.models import Document
from sales.models import Sale, Task
from search.models import Kind
from search.text import MARK_START, MARK_STOP, fold

OWNER_BOOST = 1.3
RECENT_BOOST = ((timedelta(days=30), 1.15), (timedelta(days=180), 1.05))


@dataclass(frozen=True)
class Branch:
    """One indexed model as the user sees it: its kinds and its permission filter."""

    model: type
    field: str  # SearchEntry's foreign key to it
    kinds: tuple[str, ...]
    visible: object  # crm.permissions' visible_<model>(user, queryset)


BRANCHES = (
    Branch(Customer, "customer", (Kind.CUSTOMER, Kind.LEAD), visible_customers),
    Branch(Sale, "sale", (Kind.DEAL,), visible_sales),
    Branch(Document, "document", (Kind.DOCUMENT,), visible_documents),
    Branch(Task, "task", (Kind.TASK,), visible_tasks),
    Branch(EmailTemplate, "template", (Kind.TEMPLATE,), visible_templates),
    Branch(EmailCampaign, "campaign", (Kind.CAMPAIGN,), visible_campaigns),
)
MANAGER_KINDS = (Kind.TEMPLATE, Kind.CAMPAIGN)  # reps do not search templates and campaigns


@dataclass
class Hit:
    kind: str
    object_id: int
    rank: float
    title: str = ""
    subtitle: str = ""
    title_marked: str = ""  # with MARK_START/MARK_STOP around matches, not yet escaped
    snippet: str = ""
    task_sale_id: int | None = None
    task_customer_id: int | None = None


@dataclass
class SearchResults:
    hits: list[Hit] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # per kind, all the user may see
    total: int = 0  # of the kinds asked for
    fuzzy: bool = False  # found by the typo fallback
    capped: bool = False  # more matched than were read (max_hits): the counts are "at least"
    suggestion: str = ""  # "did you mean", with the typos replaced


def searchable_kinds(user) -> list[str]:
    kinds = [kind.value for kind in Kind]
    if not is_manager_or_admin(user):
        kinds = [kind for kind in kinds if kind not in MANAGER_KINDS]
    return kinds


def python_mark(text: str, words: list[str]) -> str:
    """SQLite and the typo fallback: mark where a word occurs (case-insensitive)."""
    folded = fold(text)
    lowered = folded if len(folded) == len(text) else text.lower()  # "Müller" ~ "muller"
    spans = []
    for word in words:
        word = fold(word)
        start = lowered.find(word) if word else -1
        if start >= 0:
            spans.append((start, start + len(word)))
    out, last = [], 0
    for start, end in sorted(spans):
        if start < last:
            continue
        out += [text[last:start], MARK_START, text[start:end], MARK_STOP]
        last = end
    out.append(text[last:])
    return "".join(out)


def python_snippet(body: str, words: list[str], width: int = 160) -> str:
    if not body:
        return ""
    lowered = body.lower()
    positions = [lowered.find(w.lower()) for w in words if w and lowered.find(w.lower()) >= 0]
    start = max(0, min(positions) - width // 3) if positions else 0
    piece = body[start : start + width]
    prefix = "… " if start else ""
    suffix = " …" if start + width < len(body) else ""
    return prefix + python_mark(piece, words) + suffix
