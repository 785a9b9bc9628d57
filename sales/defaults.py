"""The pipeline settings a new installation starts with (managers edit them later)."""

STAGE_DEFAULTS = {
    # status: (base win probability %, max days in stage before stale, tasks on entering)
    "NEW": (10, 14, ["Research the customer", "Make first contact"]),
    "CONTACTED": (25, 21, ["Qualify budget, authority and timeline", "Book a discovery meeting"]),
    "PROPOSAL": (50, 30, ["Send the proposal", "Follow up on the proposal"]),
    "NEGOTIATION": (75, 45, []),
}

RULE_DEFAULTS = [
    # (from_status, condition, days, to_status)
    ("PROPOSAL", "customer_replied", 0, "NEGOTIATION"),
    ("NEGOTIATION", "no_activity", 30, ""),
]
