"""Date arithmetic in SQL that works on PostgreSQL and SQLite (the embedded default)."""

from django.db.models import F, FloatField, Func


class DaysBetween(Func):
    """Days from `start` to `end` (two datetime expressions), as a float."""

    output_field = FloatField()

    def __init__(self, start, end):
        start = F(start) if isinstance(start, str) else start
        end = F(end) if isinstance(end, str) else end
        super().__init__(end, start)

    def as_postgresql(self, compiler, conn, **extra):
        return self.as_sql(
            compiler,
            conn,
            template="(EXTRACT(EPOCH FROM (%(expressions)s))::double precision / 86400.0)",
            arg_joiner=" - ",
            **extra,
        )

    def as_sqlite(self, compiler, conn, **extra):
        return self.as_sql(
            compiler, conn, template="(julianday(%(expressions)s))",
            arg_joiner=") - julianday(", **extra,
        )  # fmt: skip
