"""PostgreSQL: the entries of customers, deals and tasks built by one INSERT ... SELECT per
batch, text, tsvector and all, instead of row by row in Python (search.services' builders,
which SQLite and the other models use). A 50,000-row import or the 100k seed would
otherwise spend longer indexing than importing; this is several times faster.

The SQL computes exactly what the Python builders do (tests/search/test_bulk.py compares
the two entry by entry): change one, change the other.
"""

import json
import queue
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeVar

from django.db import connection

from sales.models import Sale
from search import postgres, text

# translate(x, MARKS, SPACES): the characters search.text.clean() removes.
_CLEAN = "translate({}, U&'\\E000\\E001\\E002\\E003', '    ')"
# A customer's email, phone and website, normalised once per row in a LATERAL subquery
# (OFFSET 0 keeps PostgreSQL from folding it into the expressions that use it, which would
# evaluate the regular expressions again at every mention). The phone as search.text reads
# it: other whitespace as spaces, without an extension; its digits, and after a country
# code written apart (search.text._INTERNATIONAL) the national ones and both joined.
_SPACES = "U&'" + "".join(f"\\{ord(c):04X}" for c in text.PHONE_SPACES) + "'"
_NORMALISED = (
    """CROSS JOIN LATERAL (
  SELECT email, digits, national, ltrim(country || national, '0') AS joined, regexp_replace(
    coalesce(substring(lower({website}) from
      '^(?:[a-z][a-z0-9+.\\-]*:)?(?://)?(?:[^@/]*@)?([^/:?#\\s]+)'), ''), '^www\\.', '') AS host
  FROM (SELECT email, ltrim(regexp_replace(number, '[^0-9]', '', 'g'), '0') AS digits,
      coalesce(parts[1], '') AS country,
      ltrim(regexp_replace(coalesce(parts[2], ''), '[^0-9]', '', 'g'), '0') AS national
    FROM (SELECT lower(trim({email})) AS email, number, regexp_match(number,
        '^ *(?:\\+|00) *([0-9]{{1,3}})(?:[ .\\-/]+|(?=\\())(?:\\(0\\))?(.*)$') AS parts
      FROM (SELECT regexp_replace(
          translate(coalesce({phone}, ''), """
    + _SPACES
    + """, '"""
    + " " * len(text.PHONE_SPACES)
    + """'),
          ' *(?:ext\\.?|extension|x|#) *[0-9]+ *$', '', 'i') AS number OFFSET 0) n
      OFFSET 0) m
    OFFSET 0) raw
  OFFSET 0) f"""
)
_PHONE = f"""(CASE WHEN length(f.digits) >= 4 THEN f.digits
    || CASE WHEN length(f.joined) >= 4 AND f.joined <> f.digits
         THEN ' ' || f.joined ELSE '' END
    || CASE WHEN length(f.national) >= 4 AND f.national NOT IN (f.digits, f.joined)
         THEN ' ' || f.national ELSE '' END
    || ' {text.PHONE_SUFFIX_MARK}' || reverse(f.digits)
  ELSE '' END)"""
_EMAIL = """(CASE WHEN position('@' in {e}) > 0 THEN concat_ws(' ', {e}, split_part({e}, '@', 2),
    translate(split_part({e}, '@', 1), '._+-', '    '),
    replace(split_part({e}, '@', 2), '.', ' '))
  ELSE {e} END)"""
_WEBSITE = "(CASE WHEN f.host <> '' THEN f.host || ' ' || replace(f.host, '.', ' ') ELSE '' END)"


def _email(column: str) -> str:
    return _EMAIL.format(e=f"lower(trim({column}))")


_CUSTOMER_BODY = _CLEAN.format("concat_ws(E'\\n', c.notes, n.texts)")


def _customers(*, rows: str, tagged: str, notes: str, where: str) -> str:
    """The customers' entries from `rows` (their columns, as c), `tagged` (customer_id and
    the name of each of their tags) and `notes` (customer_id and their notes' texts)."""
    return f"""
SELECT CASE WHEN c.lifecycle_stage = 'lead' THEN 'lead' ELSE 'customer' END AS kind,
  c.id AS customer_id, NULL::bigint AS sale_id, NULL::bigint AS task_id,
  left({_CLEAN.format("c.name")}, 300) AS title,
  left({_CLEAN.format("concat_ws(' · ', nullif(c.company, ''), nullif(c.email, ''))")}, 300)
    AS subtitle,
  {_CLEAN.format("c.name")} AS names,
  {
        _CLEAN.format(
            f"concat_ws(' ', {_EMAIL.format(e='f.email')}, {_PHONE}, c.company, "
            f"{_WEBSITE}, c.job_title, t.names)"
        )
    } AS keys,
  left({_CUSTOMER_BODY}, %(body_chars)s) AS body,
  c.owner_id, c.lifecycle_stage AS stage,
  coalesce(' ' || t.folded || ' ', '') AS tags, c.updated_at AS activity_at
FROM {rows}
{_NORMALISED.format(email="c.email", phone="c.phone", website="c.website")}
LEFT JOIN (
  SELECT tagged.customer_id, string_agg(tagged.name, ' ' ORDER BY tagged.name) AS names,
         string_agg(replace(lower(crm_unaccent(tagged.name)), ' ', '-'), ' '
           ORDER BY tagged.name) AS folded
  FROM ({tagged}) tagged GROUP BY tagged.customer_id) t ON t.customer_id = c.id
LEFT JOIN ({notes}) n ON n.customer_id = c.id
{where}
"""


CUSTOMERS = _customers(
    rows="customers_customer c",
    tagged="""SELECT ct.customer_id, tag.name
  FROM customers_customer_tags ct JOIN customers_tag tag ON tag.id = ct.tag_id
  WHERE ct.customer_id = ANY(%(ids)s)""",
    notes="""SELECT note.customer_id,
    string_agg(note.text, E'\\n' ORDER BY note.created_at DESC, note.id DESC) AS texts
  FROM customers_customernote note
  WHERE note.customer_id = ANY(%(ids)s) GROUP BY note.customer_id""",
    where="WHERE c.id = ANY(%(ids)s)",
)
# Customers not yet committed (an import's, written by its transaction: search.alongside),
# from their values, given as JSON: one text parameter, which PostgreSQL reads in C, where
# arrays of each column took a second of Python per 50,000 customers to quote (Django's
# client-side binding), time the import waited for. They have no notes of their own yet.
NEW_CUSTOMER_COLUMNS = {
    "id": "bigint",
    "name": "text",
    "email": "text",
    "phone": "text",
    "company": "text",
    "website": "text",
    "job_title": "text",
    "notes": "text",
    "lifecycle_stage": "text",
    "owner_id": "integer",
    "updated_at": "timestamptz",
}
NEW_CUSTOMERS = _customers(
    rows="jsonb_to_recordset(%(customers)s::jsonb) AS c({})".format(
        ", ".join(f"{column} {kind}" for column, kind in NEW_CUSTOMER_COLUMNS.items())
    ),
    tagged="""SELECT t.customer_id, t.name
  FROM jsonb_to_recordset(%(tagged)s::jsonb) AS t(customer_id bigint, name text)""",
    notes="SELECT NULL::bigint AS customer_id, NULL::text AS texts LIMIT 0",
    where="",
)

SALES = f"""
SELECT 'deal' AS kind, NULL::bigint AS customer_id, s.id AS sale_id, NULL::bigint AS task_id,
  left({_CLEAN.format("s.title")}, 300) AS title,
  left({_CLEAN.format("concat_ws(' · ', nullif(c.name, ''), %(status_case)s)")}, 300)
    AS subtitle,
  {_CLEAN.format("s.title")} AS names,
  {_CLEAN.format(f"concat_ws(' ', c.name, c.company, {_email('c.email')})")} AS keys,
  left({_CLEAN.format("coalesce(a.texts, '')")}, %(body_chars)s) AS body,
  s.assigned_to_id AS owner_id, lower(s.status) AS stage, '' AS tags,
  coalesce(s.last_activity_at, s.updated_at) AS activity_at
FROM sales_sale s JOIN customers_customer c ON c.id = s.customer_id
LEFT JOIN LATERAL (
  SELECT string_agg(act.text, E'\\n' ORDER BY act.occurred_at DESC, act.id DESC) AS texts
  FROM sales_saleactivity act WHERE act.sale_id = s.id) a ON true
WHERE s.id = ANY(%(ids)s)
"""

TASKS = f"""
SELECT 'task' AS kind, NULL::bigint AS customer_id, NULL::bigint AS sale_id, t.id AS task_id,
  left({_CLEAN.format("t.title")}, 300) AS title,
  left({_CLEAN.format("concat_ws(' · ', nullif(s.title, ''), nullif(c.name, ''))")}, 300)
    AS subtitle,
  {_CLEAN.format("t.title")} AS names,
  {_CLEAN.format("concat_ws(' ', nullif(c.name, ''), nullif(s.title, ''))")} AS keys,
  left({_CLEAN.format("t.description")}, %(body_chars)s) AS body,
  t.assigned_to_id AS owner_id,
  CASE WHEN t.completed_at IS NULL THEN 'open' ELSE 'done' END AS stage, '' AS tags,
  coalesce(t.completed_at, t.due_at) AS activity_at
FROM sales_task t
LEFT JOIN sales_sale s ON s.id = t.sale_id
LEFT JOIN customers_customer c ON c.id = t.customer_id
WHERE t.id = ANY(%(ids)s)
"""

SOURCES = {"customer": CUSTOMERS, "sale": SALES, "task": TASKS}

UPSERT = """
WITH written AS (
INSERT INTO search_searchentry (record, record_id, kind, customer_id, sale_id, task_id, chunk,
  title, subtitle, names, keys, body, owner_id, stage, tags, activity_at, plain, vector)
SELECT %(record)s, coalesce(customer_id, sale_id, task_id), kind, customer_id, sale_id,
  task_id, 0, title, subtitle, names, '', body, owner_id, stage, tags, activity_at, '',
  setweight(to_tsvector(%(simple)s::regconfig, names), 'A')
  || setweight(to_tsvector(%(simple)s::regconfig, keys || ' ' || tags), 'B')
  || setweight(to_tsvector(%(language)s::regconfig, body), 'C')
FROM ({source}) src
ON CONFLICT (record, record_id, chunk) DO UPDATE SET kind = EXCLUDED.kind, title = EXCLUDED.title,
  subtitle = EXCLUDED.subtitle, names = EXCLUDED.names, keys = EXCLUDED.keys,
  body = EXCLUDED.body, owner_id = EXCLUDED.owner_id, stage = EXCLUDED.stage,
  tags = EXCLUDED.tags, activity_at = EXCLUDED.activity_at, vector = EXCLUDED.vector
RETURNING record_id, names
), words AS (
{words}
)
SELECT record_id FROM written
"""


def supports(model: str) -> bool:
    return connection.vendor == "postgresql" and model in SOURCES


# The entries of records that are gone (deleted while a task indexed them, or by raw SQL:
# the entries have no foreign-key constraint, search.models): the ids the upsert wrote none
# for, usually none at all.
GONE = "DELETE FROM search_searchentry WHERE record = %s AND record_id = ANY(%s)"


def entries_upsert(*, model: str, ids: list[int], body_chars: int) -> int:
    """Write the entries of these records (chunk 0: these models have no pieces); those of
    records that are gone are removed (GONE)."""
    status_case = "CASE s.status " + " ".join(
        f"WHEN '{value}' THEN '{label}'" for value, label in Sale.Status.choices
    ) + " END"  # fmt: skip
    source = SOURCES[model].replace("%(status_case)s", status_case)
    written = _upsert(model, source, {"ids": ids, "body_chars": body_chars})
    if gone := [pk for pk in ids if pk not in written]:
        with connection.cursor() as cursor:
            cursor.execute(GONE, [model, gone])
    return len(written)


def new_customers_upsert(*, customers: list[dict], body_chars: int) -> int:
    """Write the entries of customers from their values (NEW_CUSTOMER_COLUMNS, and
    "tag_names"), not from their rows: those of an import still writing them
    (search.alongside)."""
    tagged = [{"customer_id": c["id"], "name": name} for c in customers for name in c["tag_names"]]
    parameters = {
        # isoformat: every digit of the time (DjangoJSONEncoder keeps milliseconds). Keys
        # other than the columns' are not read.
        "customers": json.dumps(customers, default=datetime.isoformat),
        "tagged": json.dumps(tagged),
        "body_chars": body_chars,
    }
    return len(_upsert("customer", NEW_CUSTOMERS, parameters))


def _upsert(model: str, source: str, parameters: dict) -> set[int]:
    """The ids of the records whose entries `source` gave and UPSERT wrote."""
    upsert = UPSERT.format(
        source=source, words=postgres.WORDS_INSERT.format(entries="SELECT names FROM written")
    )
    with connection.cursor() as cursor:
        cursor.execute(
            upsert,
            {
                **parameters,
                "record": model,
                "simple": postgres.SIMPLE,
                "language": postgres.language_configuration(),
            },
        )
        return {record_id for (record_id,) in cursor.fetchall()}


Job = TypeVar("Job")
_STOP = object()


def on_threads(jobs: Iterable[Job], work: Callable[[Job], object], *, workers: int) -> None:
    """work(job) for every job, on `workers` threads: PostgreSQL runs each connection's
    statements on one core, and a rebuild is batches that need not wait for each other.
    Each thread has a connection of its own (Django keeps one per thread), closed when it
    ends; jobs are read as the threads take them (at most `workers` waiting). The first error
    stops the rest and is raised here."""
    waiting: queue.Queue = queue.Queue(maxsize=workers)
    failed: list[BaseException] = []

    def worker() -> None:
        try:
            while (job := waiting.get()) is not _STOP:
                if failed:
                    continue  # drain what was queued, do nothing more
                try:
                    work(job)
                except BaseException as error:
                    failed.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    try:
        for job in jobs:
            if failed:
                break
            waiting.put(job)
    finally:
        for _ in threads:
            waiting.put(_STOP)
        for thread in threads:
            thread.join()
    if failed:
        raise failed[0]
