"""The scoring rules a new installation starts with (managers edit them later)."""

COMPANY_SIZE_BANDS = [(1, 10, 5), (11, 50, 10), (51, 200, 15), (201, None, 20)]
KEYED_POINTS = {
    "budget": {"under_10k": 5, "10k_50k": 10, "50k_250k": 15, "over_250k": 20},
    "timeline": {"immediate": 15, "quarter": 10, "half_year": 6, "later": 2},
    "authority": {"decision_maker": 15, "influencer": 10, "user": 5},
    "source_quality": {
        "referral": 10,
        "partner": 8,
        "event": 7,
        "web": 5,
        "outbound": 4,
        "ads": 3,
        "other": 1,
    },
    "engagement": {
        "email_open": 1,
        "email_click": 3,
        "website_visit": 2,
        "download": 5,
        "form_submit": 8,
        "meeting_scheduled": 10,
        "call_answered": 6,
    },
}


def default_rules(rule_model) -> list:
    """Unsaved rule rows for `rule_model` (the real model or a migration's historical one)."""
    rules = [
        rule_model(factor="company_size", min_value=low, max_value=high, points=points)
        for low, high, points in COMPANY_SIZE_BANDS
    ]
    rules += [
        rule_model(factor=factor, key=key, points=points)
        for factor, table in KEYED_POINTS.items()
        for key, points in table.items()
    ]
    return rules
