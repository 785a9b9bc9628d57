"""What a merge does with each kind of row that points at a customer, by relation
("app_label.Model.field", so that customers imports none of the apps above it).

Every relation to Customer must be listed: the merge walks the model graph and refuses to
run when it meets one that is not (tests/customers/test_duplicates_merge.py fails first),
so a new model pointing at customers cannot be lost in a merge by being forgotten here.

- MOVE: the merged-away customer's rows are moved to the survivor; their ids are kept, so an
  undo moves back exactly those. A row that would break a uniqueness on the survivor (the
  same campaign run's email, an active enrolment in the same sequence) cannot move: it is
  detached (its customer emptied) where the relation allows it, else kept aside with the
  merge and deleted; an undo puts it back.
- KEEP_ASIDE: rows that belong to the merged-away customer alone (its lead score, its
  duplicate pairs): serialized with the merge, deleted with the customer, restored by undo.
  The survivor's lead score is recomputed after the merge (crm.reactions CUSTOMERS_CHANGED).
- REBUILD: derived rows (the search index) deleted with the customer and rebuilt by the
  reactions to the change.
"""

from enum import StrEnum


class Handling(StrEnum):
    MOVE = "move"
    KEEP_ASIDE = "keep_aside"
    REBUILD = "rebuild"


RELATIONS: dict[str, Handling] = {
    "customers.CustomerNote.customer": Handling.MOVE,
    "customers.CustomerMerge.survivor": Handling.MOVE,  # an earlier merge follows its survivor
    "customers.DuplicatePair.customer_a": Handling.KEEP_ASIDE,
    "customers.DuplicatePair.customer_b": Handling.KEEP_ASIDE,
    "sales.Sale.customer": Handling.MOVE,
    "sales.Task.customer": Handling.MOVE,
    "leads.LeadScore.customer": Handling.KEEP_ASIDE,
    "leads.LeadActivity.customer": Handling.MOVE,
    "leads.ScoreChange.customer": Handling.MOVE,
    "leads.WorkflowRun.customer": Handling.MOVE,
    "campaigns.EmailMessage.customer": Handling.MOVE,
    "campaigns.SequenceEnrollment.customer": Handling.MOVE,
    "campaigns.EmailDraft.customer": Handling.MOVE,
    "documents.Document.customer": Handling.MOVE,
    "search.SearchEntry.customer": Handling.REBUILD,
}

# The customer's many-to-many fields: the survivor gets the union.
MANY_TO_MANY = ("tags", "shared_with")

# Related rows shown side by side on the review page (label, relation).
COUNTED = [
    ("Deals", "sales.Sale.customer"),
    ("Tasks", "sales.Task.customer"),
    ("Notes", "customers.CustomerNote.customer"),
    ("Activities", "leads.LeadActivity.customer"),
    ("Documents", "documents.Document.customer"),
    ("Emails", "campaigns.EmailMessage.customer"),
]


def relation_key(relation) -> str:
    """ "app_label.Model.field" of a reverse relation (a field's remote side)."""
    return f"{relation.related_model._meta.label}.{relation.field.name}"


def customer_relations() -> list:
    """Every relation from another model to Customer, as Django's model graph has them."""
    from customers.models import Customer

    # Customer's own many-to-many fields (tags, sharing) are not among these; another
    # model's many-to-many to Customer is, and must be listed like any relation.
    return list(Customer._meta.related_objects)


def unhandled_relations() -> list[str]:
    return [key for key in map(relation_key, customer_relations()) if key not in RELATIONS]
