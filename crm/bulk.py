"""Fast inserts and upserts of many rows: PostgreSQL's COPY, or bulk_create on other databases.

For data loads (demo data, benchmarks, imports of many thousands of rows) where
bulk_create's per-object overhead dominates. Rows are dicts keyed by attname
(`owner_id`, not `owner`); fields left out get their model default.
"""

import json
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection, models, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone


def _columns_and_defaults(model: type[models.Model]):
    # Defaults for every column, not only those the first row lacks: rows may differ in
    # which fields they give (a CRM sync's records do).
    columns, defaults = [], {}
    now = timezone.now()
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(field.attname)
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            defaults[field.attname] = now
        else:
            defaults[field.attname] = field.get_default()
    return columns, defaults


def _row_values(model: type[models.Model], columns: list[str], defaults: dict[str, Any]):
    """A function giving a row's values for COPY, in `columns` order: the defaults where
    the row has none, JSON columns as JSON text."""
    json_columns = {
        field.attname
        for field in model._meta.concrete_fields
        if isinstance(field, models.JSONField)
    }

    def values(row: dict[str, Any]) -> list[Any]:
        out = [row[c] if c in row else defaults[c] for c in columns]
        if json_columns:
            out = [
                json.dumps(value) if column in json_columns else value
                for column, value in zip(columns, out, strict=True)
            ]
        return out

    return values


def bulk_insert(model: type[models.Model], rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert `rows` and return their new primary keys, in order."""
    if not rows:
        return []
    columns, defaults = _columns_and_defaults(model)
    if connection.vendor != "postgresql":
        objects = [model(**{**defaults, **row}) for row in rows]
        model.objects.bulk_create(objects, batch_size=1000)
        return [obj.pk for obj in objects]

    table = model._meta.db_table
    pk_column = model._meta.pk.column
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        # Take the ids from the table's sequence first, so COPY can write them and the
        # caller gets them back for the rows that refer to these.
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [table, pk_column, len(rows)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        column_list = ", ".join(quote(c) for c in [pk_column, *columns])
        values = _row_values(model, columns, defaults)
        with cursor.cursor.copy(f"COPY {quote(table)} ({column_list}) FROM STDIN") as copy:
            for pk, row in zip(ids, rows, strict=True):
                copy.write_row([pk, *values(row)])
    return ids


def bulk_upsert(
    model: type[models.Model],
    rows: Sequence[dict[str, Any]],
    *,
    unique_fields: Sequence[str],
    update_fields: Sequence[str],
) -> None:
    """Insert `rows` (dicts keyed by attname, every row with the same keys; fields left out
    get their model default), updating `update_fields` of the rows whose `unique_fields`
    exist.

    bulk_create(update_conflicts=True) with the values COPY-ed into a temporary table first:
    bound into the statement instead, 5,000 rows with a JSON column each are a statement of
    megabytes that the driver parses and quotes value by value, which took longer than the
    database's work (scoring 100,000 leads with their explanations)."""
    if not rows:
        return
    columns, defaults = _columns_and_defaults(model)
    if connection.vendor != "postgresql":
        model.objects.bulk_create(
            [model(**{**defaults, **row}) for row in rows],
            update_conflicts=True,
            unique_fields=unique_fields,
            update_fields=update_fields,
            batch_size=1000,
        )
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    staging = quote(f"upsert_{model._meta.db_table}")
    column_list = ", ".join(quote(model._meta.get_field(c).column) for c in columns)
    values = _row_values(model, columns, defaults)
    conflict = ", ".join(quote(model._meta.get_field(f).column) for f in unique_fields)
    updates = ", ".join(
        f"{quote(column)} = EXCLUDED.{quote(column)}"
        for column in (model._meta.get_field(f).column for f in update_fields)
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE {staging} ON COMMIT DROP AS "
            f"SELECT {column_list} FROM {table} WITH NO DATA"
        )
        with cursor.cursor.copy(f"COPY {staging} ({column_list}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(values(row))
        cursor.execute(
            f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM {staging} "
            f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
        )
        cursor.execute(f"DROP TABLE {staging}")  # ON COMMIT DROP waits for the outermost commit


def filter_in(queryset: models.QuerySet, field: str, values: Sequence) -> models.QuerySet:
    """queryset.filter(<field>__in=values), on PostgreSQL as one array parameter
    (`= ANY(%s)`): for thousands of values, building and parsing as many IN placeholders
    costs more than the lookups themselves (0.5 s for an import's 49,000 customers)."""
    if connection.vendor != "postgresql":
        return queryset.filter(**{f"{field}__in": values})
    quote, meta = connection.ops.quote_name, queryset.model._meta
    column = f"{quote(meta.db_table)}.{quote(meta.get_field(field).column)}"
    return queryset.filter(
        RawSQL(f"{column} = ANY(%s)", (list(values),), output_field=models.BooleanField())
    )


def analyze(*tables: type[models.Model]) -> None:
    """Refresh the planner's statistics of these models' tables after a bulk load: a load
    outruns autovacuum, and a query planned on empty statistics can take minutes instead of
    milliseconds (the forecast's calibration took 97 s right after a 100k seed). ANALYZE
    samples a bounded number of rows, so it costs well under a second per table."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model in tables:
            cursor.execute(f"ANALYZE {quote(model._meta.db_table)}")


def insert_from_select(
    model: type[models.Model], columns: Sequence[str], select: models.QuerySet
) -> int:
    """INSERT INTO model's table (columns) SELECT ... ON CONFLICT DO NOTHING: many rows made
    from a query in one statement, none twice where a unique constraint forbids it. `select`
    is a values_list whose values line up with `columns` (attnames). Returns how many rows
    were inserted."""
    try:
        sql, params = select.query.sql_with_params()
    except EmptyResultSet:  # e.g. pk__in=[]: nothing to insert
        return 0
    quote = connection.ops.quote_name
    column_list = ", ".join(quote(c) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            # "WHERE 1=1" keeps SQLite from reading ON CONFLICT as part of a join.
            f"INSERT INTO {quote(model._meta.db_table)} ({column_list}) "
            f"SELECT * FROM ({sql}) AS source WHERE 1=1 ON CONFLICT DO NOTHING",
            params,
        )
        return cursor.rowcount
