"""Date arithmetic in SQL that works on PostgreSQL and SQLite (the embedded default)."""

from django.db.models import Aggregate, F, FloatField, Func


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
            # date_part, not EXTRACT: EXTRACT returns numeric since PostgreSQL 14, which is
            # far slower over millions of rows than double precision.
            template="(date_part('epoch', %(expressions)s) / 86400.0)",
            arg_joiner=" - ",
            **extra,
        )

    def as_sqlite(self, compiler, conn, **extra):
        return self.as_sql(
            compiler, conn, template="(julianday(%(expressions)s))",
            arg_joiner=") - julianday(", **extra,
        )  # fmt: skip


class Median(Aggregate):
    """The median (PostgreSQL's percentile_cont). SQLite has none: there it is NULL, shown
    as missing, rather than another statistic passed off as the median."""

    function = "PERCENTILE_CONT"
    name = "Median"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    @staticmethod
    def available(connection) -> bool:
        return connection.vendor == "postgresql"

    def as_sqlite(self, compiler, conn, **extra):
        return "NULL", []
