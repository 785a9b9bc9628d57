"""Form helpers shared by the apps."""


def person_name(user) -> str:
    """How people are named everywhere in the UI: full name, else the user name."""
    if user is None:
        return "—"
    return user.get_full_name() or user.username


def label_users_by_name(form, *field_names: str) -> None:
    """Show full names, not user names, in these user choice fields."""
    for name in field_names:
        if name in form.fields:
            form.fields[name].label_from_instance = person_name
