"""What an import can fill, and which column of a file fills it: the mapping's suggestions.

A mapping is {field: column index}, or {field: [column, column, ...]} for the fields made
of several columns joined (Name from first and last name, Address from street, city, ...).
The suggestions know the usual headers of HubSpot, Salesforce (reports and Data Loader),
Pipedrive and Google Contacts exports, and this CRM's own export.
"""

import re

IMPORTABLE_FIELDS = {
    "name": "Name",
    "email": "Email",
    "phone": "Phone",
    "company": "Company",
    "industry": "Industry",
    "company_size": "Company size (employees)",
    "annual_revenue": "Annual revenue",
    "region": "Region",
    "address": "Address",
    "website": "Website",
    "source": "Source",
    "lifecycle_stage": "Lifecycle stage",
    "engagement_level": "Engagement level",
    "job_title": "Job title",
    "decision_authority": "Decision authority",
    "budget_range": "Budget range",
    "purchase_timeline": "Purchase timeline",
    "owner": "Owner (username, email or full name)",
    "tags": "Tags (separated by commas or semicolons)",
    "notes": "Notes",
    "last_contact_date": "Last contact date (a date or an ISO date-time)",
    "created_at": "Created (a date or an ISO date-time; new customers only)",
    "email_consent": "Email consent (yes/no, true/false, 1/0, opt-in/opt-out)",
    "email_opt_out": "Email opt-out (yes, true or 1 withdraws consent)",
}
REQUIRED_FIELDS = ("name", "email")
# Fields that may take several columns, joined in the chosen order with this separator;
# the number is how many columns the mapping page offers.
JOINED_FIELDS = {"name": (" ", 3), "address": (", ", 5)}

# Normalised headers (see normalise_header) per field, the most telling first: when a file
# has several (Email and Email (other), Phone and Mobile), the first one found wins.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "name": (
        "name",
        "full_name",
        "fullname",
        "contact_name",
        "contact_full_name",
        "display_name",
        "contact",
    ),
    "email": (
        "email",
        "e_mail",
        "email_address",
        "e_mail_address",
        "primary_email",
        "work_email",
        "email_work",
        "business_email",
        "e_mail_1_value",  # Google Contacts
        "email_1",
        "mail",
        "email_home",
        "personal_email",
        "e_mail_2_value",
        "email_2",
        "email_other",
        "other_email",
        "secondary_email",
    ),
    "phone": (
        "phone",
        "phone_number",
        "telephone",
        "tel",
        "work_phone",
        "phone_work",
        "business_phone",
        "office_phone",
        "primary_phone",
        "phone_1_value",  # Google Contacts
        "mobile",
        "mobile_phone",
        "mobile_phone_number",
        "mobile_number",
        "phone_mobile",
        "cell",
        "cell_phone",
        "home_phone",
        "phone_home",
        "phone_other",
        "phone_2_value",
    ),
    "company": (
        "company",
        "company_name",
        "organization",
        "organisation",
        "organization_name",  # Pipedrive, Google Contacts
        "organisation_name",
        "account_name",  # Salesforce contacts
        "account",
        "associated_company",  # HubSpot
        "organization_1_name",  # Google Contacts (older format)
        "employer",
        "business_name",
    ),
    "industry": ("industry",),
    "company_size": (
        "company_size",
        "employees",
        "number_of_employees",
        "no_of_employees",  # Salesforce "No. of Employees"
        "num_employees",
        "employee_count",
        "size",
    ),
    "annual_revenue": ("annual_revenue", "revenue", "annualrevenue"),
    "region": ("region",),
    "address": (
        "address",
        "full_address",
        "mailing_address",
        "postal_address",
        "address_1_formatted",  # Google Contacts
    ),
    "website": (
        "website",
        "website_url",
        "web_site",
        "url",
        "company_website",
        "homepage",
        "website_1_value",  # Google Contacts
    ),
    "source": ("source",),
    "lifecycle_stage": (
        "lifecycle_stage",
        "lifecyclestage",  # HubSpot's property name
        "lifecycle",
        "stage",
        "customer_stage",
        "contact_stage",
    ),
    "engagement_level": ("engagement_level", "engagement"),
    "job_title": (
        "job_title",
        "title",
        "jobtitle",
        "organization_title",  # Google Contacts
        "organization_1_title",
        "position",
        "job_position",
        "role",
    ),
    "decision_authority": ("decision_authority", "authority"),
    "budget_range": ("budget_range", "budget"),
    "purchase_timeline": ("purchase_timeline", "timeline"),
    "owner": (
        "owner_email",
        "contact_owner_email",
        "lead_owner_email",
        "account_owner_email",
        "record_owner_email",
        "hubspot_owner_email",
        "owner_email_address",
        "owner_username",
        "owner",
        "contact_owner",  # HubSpot: the owner's name
        "lead_owner",  # Salesforce
        "account_owner",
        "record_owner",
        "hubspot_owner",
        "owner_name",
        "sales_rep",
        "assigned_to",
    ),
    "tags": ("tags", "tag", "labels", "label", "group_membership"),
    "notes": ("notes", "note", "description", "comments", "comment"),
    "last_contact_date": (
        "last_contact_date",
        "last_contact",
        "last_contacted",
        "last_contacted_date",
        "last_activity_date",
        "last_activity",
        "last_engagement_date",
        "last_seen",
        "last_seen_at",
        # A modification date says less, but is the last sign of life an export has.
        "last_modified_date",
        "last_modified",
        "lastmodifieddate",
        "modified_date",
        "modified",
        "date_modified",
        "update_time",  # Pipedrive
        "updated_at",
        "updated",
        "last_updated",
    ),
    "created_at": (
        "created_at",
        "create_date",
        "created_date",
        "createdate",  # HubSpot's property name
        "created",
        "creation_date",
        "date_created",
        "created_time",
        "add_time",  # Pipedrive
    ),
    "email_consent": (
        "email_consent",
        "consent",
        "email_opt_in",
        "marketing_opt_in",
        "newsletter_opt_in",
        "opt_in",
        "optin",
        "opted_in",
        "marketing_consent",
        "email_marketing_consent",
        "has_newsletter",
        "newsletter",
        "subscribed",
        "marketing_status",  # Pipedrive: subscribed / unsubscribed
        "accepts_marketing",
    ),
    "email_opt_out": (
        "email_opt_out",
        "has_opted_out_of_email",  # Salesforce HasOptedOutOfEmail, "Email Opt Out"
        "unsubscribed_from_all_email",  # HubSpot
        "opted_out_of_email",
        "opt_out",
        "opted_out",
        "do_not_email",
        "unsubscribed",
        "email_unsubscribed",
        "marketing_opt_out",
    ),
}
# When no column holds the whole name or address, these parts are joined, in this order.
NAME_PARTS = (
    ("first_name", "firstname", "given_name", "forename", "first"),
    ("middle_name", "additional_name", "middle"),
    ("last_name", "lastname", "surname", "family_name", "last"),
)
ADDRESS_PARTS = (
    ("street_address", "street", "mailing_street", "address_line_1", "address_1_street"),
    ("city", "mailing_city", "town", "address_1_city"),
    ("state_region", "state", "state_province", "mailing_state_province", "province"),
    ("postal_code", "zip", "zip_code", "postcode", "zip_postal_code", "mailing_zip_postal_code"),
    ("country", "country_region", "mailing_country", "address_1_country"),
)
JOINED_PARTS = {"name": NAME_PARTS, "address": ADDRESS_PARTS}
# Pipedrive writes "Person - Email - Work", "Person - Add time".
PREFIXES = ("person_",)


def normalise_header(header: str) -> str:
    """'E-mail 1 - Value' -> 'e_mail_1_value', 'HasOptedOutOfEmail' -> 'has_opted_out_of_email'."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", header.strip())
    return re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")


def _lookup_keys(header: str) -> list[str]:
    key = normalise_header(header)
    keys = [key]
    for prefix in PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            keys.append(key[len(prefix) :])
    return keys


def guess_mapping(headers: list[str]) -> dict[str, int | list[int]]:
    """{field: column} (or [columns] for a joined field) for the headers it recognises; a
    column is suggested for one field at most."""
    columns: dict[str, int] = {}
    for index, header in enumerate(headers):
        for key in _lookup_keys(header):
            columns.setdefault(key, index)
    ranked = {
        field: [columns[alias] for alias in aliases if alias in columns]
        for field, aliases in HEADER_ALIASES.items()
    }
    used: set[int] = set()
    mapping: dict[str, int | list[int]] = {}

    def first_free(candidates: list[int]) -> int | None:
        return next((column for column in candidates if column not in used), None)

    for field in IMPORTABLE_FIELDS:
        column = first_free(ranked.get(field, []))
        if column is not None:
            mapping[field] = column
            used.add(column)
            continue
        if field in JOINED_PARTS:
            parts = []
            for aliases in JOINED_PARTS[field]:
                part = first_free([columns[alias] for alias in aliases if alias in columns])
                if part is not None:
                    parts.append(part)
                    used.add(part)
            if len(parts) == 1:
                mapping[field] = parts[0]
            elif parts:
                mapping[field] = parts
    return mapping


def mapping_columns(value: int | list[int]) -> list[int]:
    """The columns of one field's mapping, in order."""
    return list(value) if isinstance(value, list | tuple) else [value]
