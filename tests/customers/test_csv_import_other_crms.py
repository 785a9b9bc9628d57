"""Importing another CRM's export (issue 15): the mapping suggested from HubSpot, Salesforce,
Pipedrive and Google Contacts headers, Name joined from several columns, ISO date-times,
opt-out columns and other CRMs' values."""

import csv
import io
from datetime import date, datetime

import pytest
from django.urls import reverse

from customers import csv_import, selectors
from customers.models import Customer
from tests.customers.test_csv_import import _run, _upload
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def export(headers: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    writer.writerows(rows)
    return buffer.getvalue()


def mapped(headers: list[str]) -> dict[str, object]:
    """{field: header (or [headers])} of the suggested mapping, for readable assertions."""
    result = {}
    for field, value in csv_import.guess_mapping(headers).items():
        result[field] = [headers[i] for i in value] if isinstance(value, list) else headers[value]
    return result


# The issue's file: 24 columns, only 3 of which used to be mapped.
ISSUE_HEADERS = [
    "id", "first_name", "last_name", "email", "email_other", "company_name", "title", "phone",
    "mobile", "street", "city", "zip", "country", "website", "industry", "employees",
    "last_seen", "created", "lifecycle", "owner_email", "has_newsletter", "tags", "notes",
    "twitter",
]  # fmt: skip
HUBSPOT_HEADERS = [
    "Record ID", "First Name", "Last Name", "Email", "Phone Number", "Mobile Phone Number",
    "Company Name", "Job Title", "Lifecycle Stage", "Lead Status", "Contact owner",
    "Create Date", "Last Modified Date", "Last Activity Date", "Unsubscribed from all email",
    "Street Address", "City", "State/Region", "Postal Code", "Country/Region",
    "Website URL", "Industry", "Number of Employees", "Annual Revenue",
]  # fmt: skip
SALESFORCE_REPORT_HEADERS = [
    "Salutation", "First Name", "Last Name", "Title", "Account Name", "Email", "Phone",
    "Mobile", "Mailing Street", "Mailing City", "Mailing State/Province",
    "Mailing Zip/Postal Code", "Mailing Country", "Contact Owner", "Lead Source",
    "Created Date", "Last Modified Date", "Email Opt Out", "Description",
]  # fmt: skip
SALESFORCE_API_HEADERS = [
    "Id", "FirstName", "LastName", "Company", "Title", "Email", "Phone", "MobilePhone",
    "NumberOfEmployees", "AnnualRevenue", "Website", "Industry", "OwnerId", "CreatedDate",
    "LastModifiedDate", "LastActivityDate", "HasOptedOutOfEmail", "Description",
]  # fmt: skip
PIPEDRIVE_HEADERS = [
    "Person - ID", "Person - Name", "Person - First name", "Person - Last name",
    "Person - Email - Work", "Person - Email - Home", "Person - Phone - Work",
    "Person - Phone - Mobile", "Person - Organization", "Person - Owner", "Person - Label",
    "Person - Add time", "Person - Update time", "Person - Marketing status",
]  # fmt: skip
GOOGLE_HEADERS = [
    "First Name", "Middle Name", "Last Name", "Phonetic First Name", "Name Prefix",
    "Nickname", "File As", "Organization Name", "Organization Title",
    "Organization Department", "Birthday", "Notes", "Photo", "Labels", "E-mail 1 - Label",
    "E-mail 1 - Value", "E-mail 2 - Label", "E-mail 2 - Value", "Phone 1 - Label",
    "Phone 1 - Value", "Address 1 - Label", "Address 1 - Formatted", "Address 1 - Street",
    "Address 1 - City", "Address 1 - Postal Code", "Address 1 - Country",
    "Website 1 - Label", "Website 1 - Value",
]  # fmt: skip
GOOGLE_OLD_HEADERS = [
    "Name", "Given Name", "Additional Name", "Family Name", "Group Membership",
    "E-mail 1 - Type", "E-mail 1 - Value", "Phone 1 - Type", "Phone 1 - Value",
    "Organization 1 - Name", "Organization 1 - Title", "Website 1 - Type", "Website 1 - Value",
]  # fmt: skip


def test_the_issues_export_is_mapped_column_by_column():
    assert mapped(ISSUE_HEADERS) == {
        "name": ["first_name", "last_name"],
        "email": "email",
        "phone": "phone",
        "company": "company_name",
        "industry": "industry",
        "company_size": "employees",
        "address": ["street", "city", "zip", "country"],
        "website": "website",
        "lifecycle_stage": "lifecycle",
        "job_title": "title",
        "owner": "owner_email",
        "tags": "tags",
        "notes": "notes",
        "last_contact_date": "last_seen",
        "created_at": "created",
        "email_consent": "has_newsletter",
    }


def test_hubspot_headers_are_recognised():
    assert mapped(HUBSPOT_HEADERS) == {
        "name": ["First Name", "Last Name"],
        "email": "Email",
        "phone": "Phone Number",
        "company": "Company Name",
        "industry": "Industry",
        "company_size": "Number of Employees",
        "annual_revenue": "Annual Revenue",
        "address": ["Street Address", "City", "State/Region", "Postal Code", "Country/Region"],
        "website": "Website URL",
        "lifecycle_stage": "Lifecycle Stage",
        "job_title": "Job Title",
        "owner": "Contact owner",
        # The last activity says more than the last modification.
        "last_contact_date": "Last Activity Date",
        "created_at": "Create Date",
        "email_opt_out": "Unsubscribed from all email",
    }


def test_salesforce_report_headers_are_recognised():
    assert mapped(SALESFORCE_REPORT_HEADERS) == {
        "name": ["First Name", "Last Name"],
        "email": "Email",
        "phone": "Phone",
        "company": "Account Name",
        "address": [
            "Mailing Street",
            "Mailing City",
            "Mailing State/Province",
            "Mailing Zip/Postal Code",
            "Mailing Country",
        ],
        "job_title": "Title",
        "owner": "Contact Owner",
        "notes": "Description",
        "last_contact_date": "Last Modified Date",
        "created_at": "Created Date",
        "email_opt_out": "Email Opt Out",
    }


def test_salesforce_data_loader_headers_are_recognised():
    assert mapped(SALESFORCE_API_HEADERS) == {
        "name": ["FirstName", "LastName"],
        "email": "Email",
        "phone": "Phone",
        "company": "Company",
        "industry": "Industry",
        "company_size": "NumberOfEmployees",
        "annual_revenue": "AnnualRevenue",
        "website": "Website",
        "job_title": "Title",
        "notes": "Description",
        "last_contact_date": "LastActivityDate",
        "created_at": "CreatedDate",
        "email_opt_out": "HasOptedOutOfEmail",
    }


def test_pipedrive_headers_are_recognised():
    assert mapped(PIPEDRIVE_HEADERS) == {
        "name": "Person - Name",
        "email": "Person - Email - Work",
        "phone": "Person - Phone - Work",
        "company": "Person - Organization",
        "owner": "Person - Owner",
        "tags": "Person - Label",
        "last_contact_date": "Person - Update time",
        "created_at": "Person - Add time",
        "email_consent": "Person - Marketing status",
    }


def test_google_contacts_headers_are_recognised():
    assert mapped(GOOGLE_HEADERS) == {
        "name": ["First Name", "Middle Name", "Last Name"],
        "email": "E-mail 1 - Value",
        "phone": "Phone 1 - Value",
        "company": "Organization Name",
        "address": "Address 1 - Formatted",
        "website": "Website 1 - Value",
        "job_title": "Organization Title",
        "tags": "Labels",
        "notes": "Notes",
    }
    assert mapped(GOOGLE_OLD_HEADERS) == {
        "name": "Name",
        "email": "E-mail 1 - Value",
        "phone": "Phone 1 - Value",
        "company": "Organization 1 - Name",
        "website": "Website 1 - Value",
        "job_title": "Organization 1 - Title",
        "tags": "Group Membership",
    }


def test_a_mobile_number_is_the_phone_when_there_is_no_other():
    assert mapped(["Name", "Email", "Mobile"])["phone"] == "Mobile"
    assert mapped(["Name", "E-mail address", "Email (other)"])["email"] == "E-mail address"


def test_first_and_last_name_are_joined_into_the_name(rep, teams):
    text = export(
        ["first_name", "last_name", "email"],
        [["Shelley", "Kerluke", "shelley@x.example"], ["Cher", "", "cher@x.example"]],
    )
    result = _run(rep, _upload(rep, text))
    assert result.created_count == 2
    names = dict(Customer.objects.values_list("email", "name"))
    assert names == {"shelley@x.example": "Shelley Kerluke", "cher@x.example": "Cher"}


def test_a_row_without_any_part_of_the_name_is_refused(rep, teams):
    text = export(["first_name", "last_name", "email"], [["", "", "nobody@x.example"]])
    result = _run(rep, _upload(rep, text))
    assert result.row_errors[0]["errors"] == {"name": ["This field is required."]}


def test_the_address_is_joined_from_its_parts(rep, teams):
    text = export(
        ["Name", "Email", "Street Address", "City", "Postal Code", "Country/Region"],
        [["Ann", "ann@x.example", "1 Main Street", "Leeds", "", "United Kingdom"]],
    )
    _run(rep, _upload(rep, text))
    assert Customer.objects.get().address == "1 Main Street, Leeds, United Kingdom"


@pytest.mark.parametrize(
    "cell,expected",
    [
        ("2024-03-01", date(2024, 3, 1)),
        ("2024-03-01T10:22:33Z", date(2024, 3, 1)),
        ("2024-03-01T10:22:33.000Z", date(2024, 3, 1)),
        ("2024-03-01 10:22", date(2024, 3, 1)),
        ("2024-03-01T10:22:33+01:00", date(2024, 3, 1)),
        # Late in the evening in UTC is already the next day in Berlin.
        ("2024-03-01T23:30:00Z", date(2024, 3, 2)),
        ("2024-03-02T00:30:00+02:00", date(2024, 3, 1)),
    ],
)
def test_dates_may_be_dates_or_iso_date_times_taken_in_the_crms_time_zone(
    rep, teams, settings, cell, expected
):
    settings.TIME_ZONE = "Europe/Berlin"
    text = export(["name", "email", "last_seen"], [["Ann", "ann@x.example", cell]])
    result = _run(rep, _upload(rep, text))
    assert result.error_count == 0, result.row_errors
    assert Customer.objects.get().last_contact_date == expected


def test_a_wrong_date_is_refused_with_the_value_and_the_formats_accepted(rep, teams):
    text = export(
        ["name", "email", "last_seen"],
        [["Ann", "ann@x.example", "2024-13-45T10:00:00Z"], ["Bo", "bo@x.example", "yesterday"]],
    )
    result = _run(rep, _upload(rep, text))
    assert result.error_count == 2
    first, second = result.row_errors
    assert first["cells"] == {"last_contact_date": "2024-13-45T10:00:00Z"}
    assert "YYYY-MM-DD or an ISO date-time" in first["errors"]["last_contact_date"][0]
    assert second["cells"] == {"last_contact_date": "yesterday"}


def test_the_created_date_of_the_other_crm_is_kept_for_new_customers(rep, teams, settings):
    settings.TIME_ZONE = "UTC"
    text = export(
        ["Name", "Email", "Create Date"],
        [["Ann", "ann@x.example", "2021-06-01 09:30"], ["Bo", "bo@x.example", "2020-01-02"]],
    )
    _run(rep, _upload(rep, text))
    created = dict(Customer.objects.values_list("email", "created_at"))
    assert created["ann@x.example"].isoformat() == "2021-06-01T09:30:00+00:00"
    assert created["bo@x.example"].isoformat() == "2020-01-02T00:00:00+00:00"


def test_an_opt_out_column_withdraws_consent_and_never_grants_it(rep, teams):
    text = export(
        ["First Name", "Last Name", "Email", "Email Opt Out"],
        [
            ["A", "Out", "out@x.example", "1"],
            ["B", "In", "in@x.example", "0"],
            ["C", "Blank", "blank@x.example", ""],
            ["D", "Odd", "odd@x.example", "perhaps"],
        ],
    )
    result = _run(rep, _upload(rep, text))
    consent = dict(Customer.objects.values_list("email", "email_consent"))
    assert consent == {
        "out@x.example": "withdrawn",
        "in@x.example": "unknown",
        "blank@x.example": "unknown",
    }
    assert result.row_errors[0]["cells"] == {"email_opt_out": "perhaps"}


def test_hubspot_lifecycle_stages_become_this_crms_stages(rep, teams):
    stages = ["Subscriber", "Marketing Qualified Lead", "Opportunity", "Customer", "Evangelist"]
    text = export(
        ["Email", "First Name", "Lifecycle Stage"],
        [[f"p{i}@x.example", f"P{i}", stage] for i, stage in enumerate(stages)]
        + [["other@x.example", "Other", "Other"]],
    )
    result = _run(rep, _upload(rep, text))
    found = dict(Customer.objects.values_list("email", "lifecycle_stage"))
    assert [found[f"p{i}@x.example"] for i in range(5)] == [
        "lead",
        "lead",
        "prospect",
        "customer",
        "customer",
    ]
    assert result.row_errors[0]["cells"] == {"lifecycle_stage": "Other"}


def test_an_owner_may_be_named_by_email_or_full_name(manager, rep, teams):
    text = export(
        ["Name", "Email", "Contact owner"],
        [
            ["A", "a@x.example", rep.email.upper()],
            ["B", "b@x.example", f"{rep.first_name} {rep.last_name}"],
            ["C", "c@x.example", "Nobody Known"],
        ],
    )
    result = _run(manager, _upload(manager, text))
    owners = dict(Customer.objects.values_list("email", "owner"))
    assert owners == {"a@x.example": rep.pk, "b@x.example": rep.pk}
    assert result.row_errors[0]["cells"] == {"owner": "Nobody Known"}


def test_tags_may_be_separated_by_semicolons_and_google_groups_are_left_out(rep, teams):
    text = export(
        ["Name", "Email", "Labels"],
        [["A", "a@x.example", "* myContacts ::: Clients ::: VIP"], ["B", "b@x.example", "x;y"]],
    )
    _run(rep, _upload(rep, text))
    tags = {
        customer.email: sorted(tag.name for tag in customer.tags.all())
        for customer in Customer.objects.prefetch_related("tags")
    }
    assert tags == {"a@x.example": ["Clients", "VIP"], "b@x.example": ["x", "y"]}


def test_a_tag_too_long_is_a_row_error_not_a_failed_import(rep, teams):
    text = export(
        ["Name", "Email", "Tags"], [["A", "a@x.example", "t" * 60], ["B", "b@x.example", ""]]
    )
    result = _run(rep, _upload(rep, text))
    assert (result.status, result.created_count, result.error_count) == ("done", 1, 1)
    assert "longer than 50" in result.row_errors[0]["errors"]["tags"][0]


def test_this_crms_own_export_imports_again_unchanged(rep, teams):
    CustomerFactory(owner=rep, email="phone@x.example", phone="+44 20 7946 0000", name="=Sum")
    exported = list(selectors.customer_export_rows(user=rep, filters={}))
    assert exported[1][:3] == ["'=Sum", "phone@x.example", "'+44 20 7946 0000"]
    Customer.objects.all().delete()
    text = export(exported[0], [[str(cell) for cell in row] for row in exported[1:]])
    result = _run(rep, _upload(rep, text))
    assert result.error_count == 0, result.row_errors
    customer = Customer.objects.get()
    assert (customer.phone, customer.name) == ("+44 20 7946 0000", "=Sum")


def test_the_mapping_page_offers_the_joined_name_and_imports_it(rep_client, rep):
    row = ["1", "Shelley", "Kerluke", "s@x.example"] + [""] * (len(HUBSPOT_HEADERS) - 4)
    customer_import = _upload(rep, export(HUBSPOT_HEADERS, [row]))
    url = reverse("customers:import_mapping", args=[customer_import.pk])
    page = rep_client.get(url).content.decode()
    assert 'name="map_name_2"' in page
    assert '<option value="2" selected>Last Name</option>' in page
    post = {"duplicate_mode": "skip", "map_name": "1", "map_name_2": "2", "map_email": "3"}
    rep_client.post(url, post)
    csv_import.customer_import_execute(import_id=customer_import.pk)
    assert Customer.objects.get().name == "Shelley Kerluke"


def test_a_mapping_may_join_columns_only_into_name_and_address(rep, teams):
    customer_import = _upload(rep, export(["a", "b", "c"], [["A", "B", "c@x.example"]]))
    with pytest.raises(csv_import.ValidationFailed) as error:
        csv_import.customer_import_start(
            actor=rep,
            customer_import=customer_import,
            mapping={"name": [0], "email": [1, 2]},
            duplicate_mode="skip",
        )
    assert "Email takes one column" in error.value.message
    for mapping in ({"name": [0, 9], "email": 2}, {"name": [0, "x"], "email": 2}):
        with pytest.raises(csv_import.ValidationFailed):
            csv_import.customer_import_start(
                actor=rep, customer_import=customer_import, mapping=mapping, duplicate_mode="skip"
            )


def test_a_created_date_is_timezone_aware():
    assert csv_import.rows.parse_created("2024-03-01T10:00:00Z").tzinfo is not None
    assert isinstance(csv_import.rows.parse_created("2024-03-01"), datetime)
