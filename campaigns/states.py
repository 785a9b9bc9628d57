"""The campaign state machine: its statuses, the moves between them and the actions each
status allows. Services refuse exactly what this module forbids, and the campaign page shows
exactly the buttons it allows (`campaign_actions`), so the two cannot disagree.

    draft ──send now──▶ sending ──last batch──▶ sent (one-off) / scheduled (recurring)
      │                  ▲   │
      └──schedule──▶ scheduled (a time or a cron firing starts a run)
                         │   └──pause / retries ran out──▶ paused ──resume──▶ (see below)
                         └──pause──▶ paused
    any unfinished status ──cancel──▶ cancelled

Resume goes back to where the campaign was: sending when a run is unfinished, scheduled when
a schedule waits for its firing, sent when its one run finished meanwhile, draft otherwise.
"""

from enum import StrEnum

from campaigns.models import EmailCampaign
from crm.errors import ValidationFailed

Status = EmailCampaign.Status


class Move(StrEnum):
    """Every change of a campaign's status, by who or what makes it."""

    SEND_NOW = "send_now"  # a manager
    SCHEDULE = "schedule"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    RUN_START = "run_start"  # the sender: a schedule fired, or a send now began
    RUN_GIVE_UP = "run_give_up"  # retries ran out: paused with the reason
    RUN_FINISH = "run_finish"  # the last batch of a run went out


UNFINISHED = frozenset({Status.DRAFT, Status.SCHEDULED, Status.SENDING, Status.PAUSED})
# A sender that finds its campaign in one of these stops before its next batch.
STOPS_SENDING = frozenset({Status.PAUSED, Status.CANCELLED})

# Move -> (the statuses it may start from, the statuses it may lead to).
MOVES: dict[Move, tuple[frozenset[str], frozenset[str]]] = {
    Move.SEND_NOW: (frozenset({Status.DRAFT}), frozenset({Status.SENDING})),
    Move.SCHEDULE: (frozenset({Status.DRAFT, Status.SCHEDULED}), frozenset({Status.SCHEDULED})),
    Move.PAUSE: (frozenset({Status.SENDING, Status.SCHEDULED}), frozenset({Status.PAUSED})),
    Move.RESUME: (
        frozenset({Status.PAUSED}),
        frozenset({Status.SENDING, Status.SCHEDULED, Status.SENT, Status.DRAFT}),
    ),
    Move.CANCEL: (UNFINISHED, frozenset({Status.CANCELLED})),
    Move.RUN_START: (frozenset({Status.SCHEDULED, Status.SENDING}), frozenset({Status.SENDING})),
    Move.RUN_GIVE_UP: (frozenset({Status.SENDING}), frozenset({Status.PAUSED})),
    Move.RUN_FINISH: (
        frozenset({Status.SENDING, Status.PAUSED}),
        frozenset({Status.SENT, Status.SCHEDULED}),
    ),
}


def sources(move: Move) -> frozenset[str]:
    """The statuses `move` may start from (for a conditional UPDATE ... WHERE status IN)."""
    return MOVES[move][0]


def can_move(status: str, move: Move) -> bool:
    return status in MOVES[move][0]


def move_to(campaign: EmailCampaign, move: Move, status: str) -> None:
    """Set the campaign's status by `move`; the caller saves it. A move the table does not
    allow is a bug in the caller (services check with `action_check` first)."""
    starts, ends = MOVES[move]
    if campaign.status not in starts or status not in ends:
        raise AssertionError(f"{move}: {campaign.status} -> {status} is not a campaign move")
    campaign.status = status


class Action(StrEnum):
    """What a manager may do from the campaign page; the values are the page's action names."""

    EDIT = "edit"
    SCHEDULE = "schedule"
    SEND_NOW = "send"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    DELETE = "delete"


# The actions that are moves may start where their move may start.
ACTION_MOVES = {
    Action.SCHEDULE: Move.SCHEDULE,
    Action.SEND_NOW: Move.SEND_NOW,
    Action.PAUSE: Move.PAUSE,
    Action.RESUME: Move.RESUME,
    Action.CANCEL: Move.CANCEL,
}
# The two that change no status: edit between sends, delete unless a sender is at work.
OTHER_ACTIONS = {
    Action.EDIT: frozenset({Status.DRAFT, Status.SCHEDULED, Status.PAUSED}),
    Action.DELETE: frozenset(Status.values) - {Status.SENDING},
}
# An edit is refused while a run is unfinished, whatever the status says: half a run with
# one template and half with another would be worse than either.
REFUSED_WHILE_A_SEND_IS_UNDER_WAY = frozenset({Action.EDIT})

REFUSALS = {
    Action.EDIT: "A campaign can be edited only between sends, not while a send is under way.",
    Action.SCHEDULE: "Only a draft or scheduled campaign can be (re)scheduled.",
    Action.SEND_NOW: "A {status} campaign cannot be sent.",
    Action.PAUSE: "Only a sending or scheduled campaign can be paused.",
    Action.RESUME: "Only a paused campaign can be resumed.",
    Action.CANCEL: "This campaign has finished; there is nothing to cancel.",
    Action.DELETE: "Pause or cancel the campaign before deleting it.",
}


def allowed_statuses(action: Action) -> frozenset[str]:
    if action in ACTION_MOVES:
        return sources(ACTION_MOVES[action])
    return OTHER_ACTIONS[action]


def actions_allowed(status: str, *, send_under_way: bool) -> frozenset[Action]:
    """The actions a campaign in `status` allows (`send_under_way`: it has an unfinished run)."""
    return frozenset(
        action
        for action in Action
        if status in allowed_statuses(action)
        and not (send_under_way and action in REFUSED_WHILE_A_SEND_IS_UNDER_WAY)
    )


def send_under_way(campaign: EmailCampaign) -> bool:
    return campaign.runs.unfinished().exists()


def campaign_actions(campaign: EmailCampaign) -> frozenset[Action]:
    """The actions the campaign allows now: the buttons its page shows. Asks the database
    about unfinished runs only when the answer matters."""
    under_way = campaign.status in allowed_statuses(Action.EDIT) and send_under_way(campaign)
    return actions_allowed(campaign.status, send_under_way=under_way)


def action_check(campaign: EmailCampaign, action: Action) -> None:
    """ValidationFailed unless the campaign (locked by the caller) allows `action` now."""
    allowed = campaign.status in allowed_statuses(action) and not (
        action in REFUSED_WHILE_A_SEND_IS_UNDER_WAY and send_under_way(campaign)
    )
    if not allowed:
        status = campaign.get_status_display().lower()
        raise ValidationFailed(REFUSALS[action].format(status=status))


def status_after_resume(
    campaign: EmailCampaign, *, send_under_way: bool, has_schedule: bool, has_runs: bool
) -> str:
    if send_under_way:
        return Status.SENDING
    if has_schedule:
        return Status.SCHEDULED  # waiting for its (next) firing
    if has_runs:
        return Status.SENT  # paused after its one run had finished
    return Status.DRAFT


def status_after_run(campaign: EmailCampaign, *, other_runs_unfinished: bool) -> str | None:
    """The campaign's status once a run's last batch went out, or None to leave it as it is.
    A pause that lands after the last batch has nothing left to pause: a one-off campaign is
    sent. A recurring one waits for its next firing (unless paused)."""
    if other_runs_unfinished:
        return None
    if campaign.status == Status.SENDING:
        return Status.SCHEDULED if campaign.is_recurring else Status.SENT
    if campaign.status == Status.PAUSED and not campaign.is_recurring:
        return Status.SENT
    return None
