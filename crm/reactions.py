"""Every cross-app reaction, in one file: "when X happens in app A, app B does Y".

An app that something else may react to calls `react(Event.X, ...)` (or `ask(...)` for a
question another app answers) with keyword arguments; what follows is listed here and
nowhere else, by dotted path, so a reader finds it in one place and no app imports an app
above it (DESIGN.md section 2). No signals, no lists filled in `AppConfig.ready()`.

Events (raised by -> what follows):
- CUSTOMERS_CHANGED: customers.services and customers.csv_import (create, update, import)
  -> leads rescore those customers (one Celery task after commit); with
  start_workflows=False (an import) they are graded without the grade workflows, so an
  import never enrols anyone in nurture or sends a hot/warm email by itself;
  -> search rebuilds their entries and their deals' (in the transaction).
- CUSTOMERS_INSERTED: customers.csv_import (each batch of new customers it writes, with
  their values, in the import's transaction) -> search writes their entries meanwhile, on a
  connection of its own; CUSTOMERS_CHANGED at the import's end waits for them
  (search.alongside).
- RECORDS_CHANGED: the services that change what the global search finds (customers' notes
  and owners, deals and their activities, tasks, documents and their text, email templates
  and campaigns) -> search rebuilds those records' entries (in the transaction). Deletes
  need no event: an entry is deleted with its record.
- PROPOSAL_ATTACHED: documents.services (upload, new version or restore of a proposal on a
  deal) -> the deal's pipeline rules run again (CONTACTED -> PROPOSAL), a task after commit.
- LEAD_NEEDS_FOLLOW_UP: leads.services.workflows (a lead turned hot or warm and has its rep)
  -> sales creates the follow-up tasks (a call within 2 h for a hot lead, ...), then
  campaigns prepares the hot/warm email from the managers' template as a draft on the rep's
  task (or sends it, if they chose so), both in the workflow run's transaction.
- LEADS_TURNED_COLD: leads.services.workflows (in the rescoring transaction) -> campaigns
  enrols them in the managers' cold-lead sequence (the email gate filters).
- IMPORT_CONFIRMED: customers.csv_import (the confirmation step) -> campaigns records the
  "enrol the new leads in sequence X" choice (none unless chosen).
- CUSTOMERS_IMPORTED: customers.csv_import (in the transaction writing the rows) ->
  campaigns enrols the new leads if that choice was made.
- RECOMMENDED_CONTENT_SENT: campaigns.drafts (a lead email offering a recommended document
  was sent, in the sending transaction) -> ai records the send, so the recommender leaves
  the document out for that customer as after a one-click share.

- DEAL_CHANGED: sales.services.deals (a deal created, moved, edited or deleted) -> an
  event for every open board of the people who may see it, written in the transaction and
  pushed after commit (crm.realtime).
- Notifications, each written after commit for its recipients (crm.notifications.notify; the
  raiser names them, a user's preference may turn a kind off):
  TASK_ASSIGNED: sales.services.tasks (a task assigned to someone by another user or by
  automation) -> its assignee;
  LEAD_TURNED_HOT: leads.services.workflows -> the lead's owner;
  DEAL_EDITED_BY_OTHER: sales.services.deals (moved or edited by someone other than its
  assignee, the automation included) -> its assignee;
  DEAL_CLOSED: sales.services.deals (won or lost) -> the managers of its assignee's team;
  DOCUMENT_SHARED: documents.services (users added to a document) -> them;
  CAMPAIGN_ENDED: campaigns' sending (a run finished, paused, or a batch failed) -> the
  campaign's author;
  IMPORT_FINISHED: customers.csv_import (an import done or failed) -> its uploader;
  MODEL_TRAINED: ai.services.training (a model trained, activated or not) -> the managers.

Questions (asked by -> answered by):
- DEALS_WITH_PROPOSAL: sales.automation's CONTACTED -> PROPOSAL rule -> documents.selectors
  (a proposal document attached since the deal entered its stage).
- IMPORT_SEQUENCES: customers' import confirmation form -> campaigns ({id: name} of the
  sequences the user may enrol imported leads in).
- LEAD_AI_SCORES: leads.services.rescore (every rescoring, a chunk of leads at a time) ->
  ai.services.scoring ({customer id: model probability in percent, its explanation, and
  whether it grades the lead}); nothing when no model is active, and the rule score stands.
- CUSTOMER_MERGE_LINKS: customers.duplicates (a merge, in its transaction) ->
  integrations moves the merged-away customer's sync ledger links to the survivor (a link in
  a connection that already links the survivor is detached instead) and answers
  {"moved": {key: ids}, "detached": {key: ids}} for the merge record; the undo moves them
  back through the merge record's keys like any other row.
- SUPPRESSED_ADDRESSES: crm.notifications' daily digest -> customers.selectors (which
  addresses are on the suppression list: no digest goes there).
- RECOMMENDED_CONTENT: campaigns.drafts (the warm lead's case-study email) -> ai's
  recommender (the top document for the customer as template variables, and its id, which
  the draft keeps for RECOMMENDED_CONTENT_SENT).

Not listed here, because they go down the layers and so are plain calls a reader sees at the
call site: an app calling the services of an app it builds on (campaigns' webhooks, SendGrid's
and Mailgun's, record suppressions and unsubscribes on customers and opens and clicks as lead
activities; connecting Mailgun imports its suppression lists through customers' services;
documents' share link records a lead activity; a deal's activity updates its customer's last
contact date).

Reactions run in the caller's transaction: they write with it (LEAD_NEEDS_FOLLOW_UP) or
defer their work with `transaction.on_commit`, so nothing happens for a change that is
rolled back.
"""

from enum import StrEnum
from functools import reduce
from operator import or_

from django.utils.module_loading import import_string


class Event(StrEnum):
    CUSTOMERS_CHANGED = "customers_changed"  # customer_ids: list[int], start_workflows: bool
    # customers: list[dict] (the values written, by attname, with "id" and "tag_names")
    CUSTOMERS_INSERTED = "customers_inserted"
    PROPOSAL_ATTACHED = "proposal_attached"  # sale_ids: list[int]
    # assigned_to: User, customer: Customer, tasks: [(title, priority, due_at)], grade: str,
    # actions: list[str] (the workflow run's record; reactions add what they did)
    LEAD_NEEDS_FOLLOW_UP = "lead_needs_follow_up"
    LEADS_TURNED_COLD = "leads_turned_cold"  # customer_ids: list[int], now: datetime
    IMPORT_CONFIRMED = "import_confirmed"  # customer_import, actor, sequence_id: str
    CUSTOMERS_IMPORTED = "customers_imported"  # customer_import, created_ids: list[int]
    RECOMMENDED_CONTENT_SENT = "recommended_content_sent"  # customer, document_id, sent_by
    # model: "customer" | "sale" | "document" | "task" | "template" | "campaign", ids: list[int]
    RECORDS_CHANGED = "records_changed"
    # sale_id, action: "created" | "moved" | "updated" | "deleted", actor, title,
    # from_status, to_status, viewers_before: set[int] (who saw it before the change)
    DEAL_CHANGED = "deal_changed"
    # Notifications: notices: list[crm.notifications.Notice]
    TASK_ASSIGNED = "task_assigned"
    LEAD_TURNED_HOT = "lead_turned_hot"
    DEAL_EDITED_BY_OTHER = "deal_edited_by_other"
    DEAL_CLOSED = "deal_closed"
    DOCUMENT_SHARED = "document_shared"
    CAMPAIGN_ENDED = "campaign_ended"
    IMPORT_FINISHED = "import_finished"
    MODEL_TRAINED = "model_trained"


class Question(StrEnum):
    DEALS_WITH_PROPOSAL = "deals_with_proposal"  # -> Q over sales.Sale
    IMPORT_SEQUENCES = "import_sequences"  # user -> {id: name}
    LEAD_AI_SCORES = "lead_ai_scores"  # customer_ids, now -> {id: {score, explanation, grades}}
    # customer, user -> {variable: value, "recommended_document_id": id}
    RECOMMENDED_CONTENT = "recommended_content"
    # survivor_id, other_id -> {"moved": {key: ids}, "detached": {key: ids}}
    CUSTOMER_MERGE_LINKS = "customer_merge_links"
    SUPPRESSED_ADDRESSES = "suppressed_addresses"  # emails -> set of lower-cased addresses


REACTIONS: dict[Event, list[str]] = {
    Event.CUSTOMERS_CHANGED: [
        "leads.services.rescore.lead_rescore_later",
        "search.services.customers_index",
    ],
    Event.CUSTOMERS_INSERTED: ["search.alongside.new_customers_index"],
    Event.PROPOSAL_ATTACHED: ["sales.services.deals.deals_advance_later"],
    Event.LEAD_NEEDS_FOLLOW_UP: [
        "sales.services.tasks.follow_up_tasks_create",
        "campaigns.drafts.follow_up_draft_prepare",  # after the tasks: the draft joins one
    ],
    Event.LEADS_TURNED_COLD: ["campaigns.sequences.enrolment.cold_leads_enrol"],
    Event.IMPORT_CONFIRMED: ["campaigns.sequences.imports.import_enrolment_choose"],
    Event.CUSTOMERS_IMPORTED: ["campaigns.sequences.imports.imported_leads_enrol"],
    Event.RECOMMENDED_CONTENT_SENT: ["ai.services.recommend.recommended_content_sent"],
    Event.RECORDS_CHANGED: ["search.services.records_index"],
    Event.DEAL_CHANGED: ["crm.realtime.deal_changed_publish"],
    Event.TASK_ASSIGNED: ["crm.notifications.notify"],
    Event.LEAD_TURNED_HOT: ["crm.notifications.notify"],
    Event.DEAL_EDITED_BY_OTHER: ["crm.notifications.notify"],
    Event.DEAL_CLOSED: ["crm.notifications.notify"],
    Event.DOCUMENT_SHARED: ["crm.notifications.notify"],
    Event.CAMPAIGN_ENDED: ["crm.notifications.notify"],
    Event.IMPORT_FINISHED: ["crm.notifications.notify"],
    Event.MODEL_TRAINED: ["crm.notifications.notify"],
}

# The answers are OR-ed together: Q objects over the asking app's model, or dicts.
ANSWERS: dict[Question, list[str]] = {
    Question.DEALS_WITH_PROPOSAL: ["documents.selectors.sales_with_proposal_attached"],
    Question.IMPORT_SEQUENCES: ["campaigns.sequences.imports.sequences_offered_to_imports"],
    Question.LEAD_AI_SCORES: ["ai.services.scoring.lead_ai_scores"],
    Question.CUSTOMER_MERGE_LINKS: ["integrations.services.links.customer_links_merge"],
    Question.RECOMMENDED_CONTENT: ["ai.services.recommend.recommended_content_variables"],
    Question.SUPPRESSED_ADDRESSES: ["customers.selectors.suppressed_addresses"],
}


def react(event: Event, **kwargs) -> None:
    """Run every reaction listed for `event` with the event's keyword arguments."""
    for path in REACTIONS[event]:
        import_string(path)(**kwargs)


def ask(question: Question, default, **kwargs):
    """OR together the answers listed for `question`; `default` when nobody answers."""
    answers = [import_string(path)(**kwargs) for path in ANSWERS[question]]
    return reduce(or_, answers) if answers else default
