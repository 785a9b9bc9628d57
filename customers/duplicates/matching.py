"""How two customers are compared, in SQL (PostgreSQL: pg_trgm and the crm_unaccent wrapper
that search's migration 0002 installs, and the crm_dup_* key functions of customers' 0010).

Keys, computed per customer:
- name: lower-case, accents and punctuation off, spaces collapsed ("José  O'Neil" -> "jose o neil")
- email: lower-case, "+tag" off, dots off for Gmail ("J.Doe+x@GoogleMail.com" -> "jdoe@gmail.com")
- phone: the last 9 digits, when there are at least 7 ("+1 (555) 010-2000" -> "550102000")
- company: like the name, with legal forms off ("ACME Corporation" and "Acme Corp." -> "acme")
- domain: the email's domain, except free-mail ones (gmail.com says nothing about a company)

Blocking (the scan compares only customers that share a block): the same email key; the same
phone key; the same domain and a name word starting alike; a company starting alike (its
first five letters) and a name word starting alike. A block shared by more than
DUPLICATE_MAX_BLOCK customers (a placeholder phone, a huge company's "j" names) is no
evidence and is left out, so the work stays proportional to the customers.

Scoring (0-100): 60 x the names' trigram similarity, +60 the same email key, +35 the same
phone, +20 the same name part of two addresses ("jane.doe@acme.example" and
"jane.doe@gmail.com"; not a role's like "info"), +10 the same company domain, +15 companies
at least 60% alike, -20 companies clearly different (under 30%), -10 two different phones,
-30 different numbers in the names ("Store 12" and "Store 13" are two shops). "Same phone,
names 92% alike" is 35 + 55 = 90; two strangers who share a phone number by chance score
about 20.
"""

from typing import Any

from django.conf import settings
from django.db import connection

FREE_MAIL_DOMAINS = [
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "hotmail.com",
    "hotmail.co.uk", "hotmail.fr", "outlook.com", "live.com", "msn.com", "icloud.com", "me.com",
    "mac.com", "aol.com", "gmx.de", "gmx.net", "gmx.com", "web.de", "proton.me",
    "protonmail.com", "mail.com", "yandex.ru", "yandex.com", "zoho.com", "fastmail.com",
    "t-online.de", "orange.fr", "free.fr", "libero.it", "qq.com", "163.com",
]  # fmt: skip

# An address's name part says nothing of a person when it is a role's.
GENERIC_EMAIL_USERS = [
    "info", "sales", "contact", "admin", "office", "hello", "support", "mail", "team",
    "billing", "accounts", "enquiries", "inquiries", "noreply", "service", "help",
]  # fmt: skip

NAME_WEIGHT = 60
EMAIL_POINTS = 60
PHONE_POINTS = 35
DOMAIN_POINTS = 10
SIMILAR_COMPANY_POINTS = 15
DIFFERENT_COMPANY_POINTS = -20
EMAIL_USER_POINTS = 20
DIFFERENT_PHONE_POINTS = -10
DIFFERENT_NUMBERS_POINTS = -30
SIMILAR_COMPANY = 0.6
DIFFERENT_COMPANY = 0.3


def _score_sql(a: str, b: str) -> tuple[str, str]:
    """(confidence, reasons) SQL expressions comparing the keys of `a` and `b` (table aliases
    with columns name_key, email_key, phone_key, company_key, domain)."""
    ns = f"similarity({a}.name_key, {b}.name_key)"
    cs = (
        f"(CASE WHEN {a}.company_key <> '' AND {b}.company_key <> '' "
        f"THEN similarity({a}.company_key, {b}.company_key) END)"
    )
    same_email = f"({a}.email_key = {b}.email_key)"
    same_phone = f"coalesce({a}.phone_key = {b}.phone_key, false)"
    same_domain = f"coalesce({a}.domain = {b}.domain, false)"
    other_phone = f"coalesce({a}.phone_key <> {b}.phone_key, false)"
    # Without dots: Gmail's key has none ("jane.doe@acme.example", "janedoe@gmail.com").
    user_a = f"replace(split_part({a}.email_key, '@', 1), '.', '')"
    same_user = (
        f"(NOT {same_email} AND {user_a} = replace(split_part({b}.email_key, '@', 1), '.', '')"
        f" AND length({user_a}) >= 4 AND {user_a} NOT IN ({_generic_list()}))"
    )
    digits_a = f"regexp_replace({a}.name_key, '[^0-9]', '', 'g')"
    digits_b = f"regexp_replace({b}.name_key, '[^0-9]', '', 'g')"
    other_numbers = f"({digits_a} <> '' AND {digits_b} <> '' AND {digits_a} <> {digits_b})"
    confidence = (
        f"least(100, greatest(0, round({NAME_WEIGHT} * {ns}"
        f" + CASE WHEN {same_email} THEN {EMAIL_POINTS} ELSE 0 END"
        f" + CASE WHEN {same_phone} THEN {PHONE_POINTS} ELSE 0 END"
        f" + CASE WHEN {same_domain} THEN {DOMAIN_POINTS} ELSE 0 END"
        f" + CASE WHEN {same_user} THEN {EMAIL_USER_POINTS} ELSE 0 END"
        f" + CASE WHEN {other_phone} THEN {DIFFERENT_PHONE_POINTS} ELSE 0 END"
        f" + CASE WHEN {other_numbers} THEN {DIFFERENT_NUMBERS_POINTS} ELSE 0 END"
        f" + CASE WHEN {cs} >= {SIMILAR_COMPANY} THEN {SIMILAR_COMPANY_POINTS}"
        f" WHEN {cs} < {DIFFERENT_COMPANY} THEN {DIFFERENT_COMPANY_POINTS} ELSE 0 END)))::int"
    )
    reasons = (
        "array_remove(ARRAY["
        f"CASE WHEN {same_email} THEN 'same email' END, "
        f"CASE WHEN {same_phone} THEN 'same phone' END, "
        f"CASE WHEN {same_domain} AND NOT {same_email} THEN 'same email domain' END, "
        f"CASE WHEN {same_user} THEN 'same email name' END, "
        f"CASE WHEN {cs} = 1 THEN 'same company' "
        f"WHEN {cs} >= {SIMILAR_COMPANY} THEN 'companies ' || round(100 * {cs}) || '%% alike' "
        f"WHEN {cs} < {DIFFERENT_COMPANY} THEN 'different companies' END, "
        f"CASE WHEN {other_phone} THEN 'different phones' END, "
        f"CASE WHEN {other_numbers} THEN 'different numbers in the names' END, "
        f"CASE WHEN {ns} = 1 THEN 'same name' "
        f"ELSE 'names ' || round(100 * {ns}) || '%% alike' END"
        "], NULL)"
    )
    return confidence, reasons


KEYS_SQL = """
    SELECT id, name_key, email_key, phone_key, company_key,
           CASE WHEN split_part(email_key, '@', 2) IN ({free}) THEN NULL
                ELSE nullif(split_part(email_key, '@', 2), '') END AS domain
    FROM (SELECT {id} AS id, crm_dup_name({name}) AS name_key,
                 crm_dup_email_key({email}) AS email_key, crm_dup_phone_key({phone}) AS phone_key,
                 crm_dup_company({company}) AS company_key
          {source}) raw
"""


def _generic_list() -> str:
    return ", ".join("'" + user + "'" for user in GENERIC_EMAIL_USERS)  # constants only


def _free_list() -> str:
    return ", ".join("'" + domain + "'" for domain in FREE_MAIL_DOMAINS)  # constants only


# The scan -----------------------------------------------------------------------------------


def scan_prepare_keys(cursor) -> None:
    """dup_keys: every customer's keys, in a temporary table of this connection."""
    cursor.execute("DROP TABLE IF EXISTS dup_keys, dup_blocks")
    keys = KEYS_SQL.format(
        free=_free_list(),
        id="id",
        name="name",
        email="email",
        phone="phone",
        company="company",
        source="FROM customers_customer",
    )
    cursor.execute(f"CREATE TEMP TABLE dup_keys AS {keys}")
    cursor.execute("ALTER TABLE dup_keys ADD PRIMARY KEY (id)")
    cursor.execute("ANALYZE dup_keys")


def scan_prepare_blocks(cursor) -> None:
    """dup_blocks: (customer, block) for every block shared by 2..DUPLICATE_MAX_BLOCK."""
    cursor.execute(
        """
        CREATE TEMP TABLE dup_blocks AS
        WITH tokens AS (
            SELECT k.id, k.domain, left(k.company_key, 5) AS company, left(t, 3) AS token
            FROM dup_keys k, unnest(string_to_array(k.name_key, ' ')) t
            WHERE length(t) >= 2
        ), blocks AS (
            SELECT id, 'e' || email_key AS block FROM dup_keys WHERE email_key LIKE '_%%@_%%'
            UNION SELECT id, 'p' || phone_key FROM dup_keys WHERE phone_key IS NOT NULL
            UNION SELECT id, 'd' || domain || '|' || token FROM tokens WHERE domain IS NOT NULL
            UNION SELECT id, 'c' || company || '|' || token FROM tokens WHERE company <> ''
        ), sized AS (
            SELECT id, block, count(*) OVER (PARTITION BY block) AS size FROM blocks
        )
        SELECT id, block FROM sized WHERE size BETWEEN 2 AND %s
        """,
        [settings.DUPLICATE_MAX_BLOCK],
    )
    cursor.execute("CREATE INDEX ON dup_blocks (block, id)")
    cursor.execute("ANALYZE dup_blocks")


def scan_score_part(cursor, *, part: int, parts: int, job_id: int) -> int:
    """Score the candidate pairs whose lower id falls in `part` of `parts` and save those at
    or above DUPLICATE_MIN_CONFIDENCE: new pairs open, open pairs updated, dismissed ones left
    as they are. Returns how many rows were written."""
    confidence, reasons = _score_sql("ka", "kb")
    cursor.execute(
        f"""
        INSERT INTO customers_duplicatepair
            (customer_a_id, customer_b_id, confidence, reasons, status, found_by_id, found_at)
        SELECT a_id, b_id, confidence, to_jsonb(reasons), 'open', %(job)s, now()
        FROM (
            SELECT c.a_id, c.b_id, {confidence} AS confidence, {reasons} AS reasons
            FROM (SELECT DISTINCT a.id AS a_id, b.id AS b_id
                  FROM dup_blocks a JOIN dup_blocks b ON a.block = b.block AND a.id < b.id
                  WHERE a.id %% %(parts)s = %(part)s) c
            JOIN dup_keys ka ON ka.id = c.a_id
            JOIN dup_keys kb ON kb.id = c.b_id
            -- Still there: a merge or a delete since the keys were read drops the pair.
            JOIN customers_customer ca ON ca.id = c.a_id
            JOIN customers_customer cb ON cb.id = c.b_id
        ) scored
        WHERE confidence >= %(min)s
        ON CONFLICT (customer_a_id, customer_b_id) DO UPDATE
            SET confidence = EXCLUDED.confidence, reasons = EXCLUDED.reasons,
                found_by_id = EXCLUDED.found_by_id
            WHERE customers_duplicatepair.status = 'open'
        """,
        {
            "job": job_id,
            "parts": parts,
            "part": part,
            "min": settings.DUPLICATE_MIN_CONFIDENCE,
        },
    )
    return cursor.rowcount


def scan_finish(cursor, *, job_id: int) -> int:
    """Drop the open pairs this scan no longer found (and the temporary tables); returns
    how many open pairs there are."""
    cursor.execute(
        "DELETE FROM customers_duplicatepair WHERE status = 'open' "
        "AND found_by_id IS DISTINCT FROM %s",
        [job_id],
    )
    cursor.execute("DROP TABLE IF EXISTS dup_keys, dup_blocks")
    cursor.execute("SELECT count(*) FROM customers_duplicatepair WHERE status = 'open'")
    return cursor.fetchone()[0]


# One record against the others (warnings at entry, the survivor after a merge) ----------------


def matches_for(
    data: dict[str, Any],
    *,
    exclude_ids: list[int] | None = None,
    limit: int = 10,
    min_confidence: int | None = None,
) -> list[tuple[int, int, list[str]]]:
    """[(customer id, confidence, reasons)] of the customers likely to be the one `data`
    describes (name, email, phone, company), best first, at or above `min_confidence`
    (DUPLICATE_LIKELY_CONFIDENCE unless given). Found through indexes (the same email or
    phone key, or a name within trigram reach), never by reading every customer."""
    if connection.vendor != "postgresql":
        return []
    params = {
        "name": data.get("name") or "",
        "email": data.get("email") or "",
        "phone": data.get("phone") or "",
        "company": data.get("company") or "",
        "exclude": list(exclude_ids or []) or [0],
        "min": settings.DUPLICATE_LIKELY_CONFIDENCE if min_confidence is None else min_confidence,
        "limit": limit,
    }
    if not params["name"].strip() and not params["email"].strip():
        return []
    new = KEYS_SQL.format(
        free=_free_list(),
        id="0",
        name="%(name)s",
        email="%(email)s",
        phone="%(phone)s",
        company="%(company)s",
        source="",
    )
    existing = KEYS_SQL.format(
        free=_free_list(),
        id="c.id",
        name="c.name",
        email="c.email",
        phone="c.phone",
        company="c.company",
        source="FROM candidates c",
    )
    confidence, reasons = _score_sql("kn", "ke")
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH candidates AS (
                SELECT id, name, email, phone, company FROM customers_customer
                WHERE crm_dup_email_key(email) = crm_dup_email_key(%(email)s)
                UNION
                SELECT id, name, email, phone, company FROM customers_customer
                WHERE crm_dup_phone_key(phone) = crm_dup_phone_key(%(phone)s)
                UNION
                (SELECT id, name, email, phone, company FROM customers_customer
                 WHERE upper(name) %% upper(%(name)s)
                 ORDER BY similarity(upper(name), upper(%(name)s)) DESC LIMIT 200)
            )
            SELECT ke.id, {confidence} AS confidence, {reasons} AS reasons
            FROM ({new}) kn, ({existing}) ke
            WHERE ke.id <> ALL(%(exclude)s)
              AND {confidence} >= %(min)s
            ORDER BY confidence DESC, ke.id
            LIMIT %(limit)s
            """,
            params,
        )
        return [(row[0], row[1], list(row[2])) for row in cursor.fetchall()]
