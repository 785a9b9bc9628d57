"""Who used the CPU during a load test: the load generator, the servers, PostgreSQL, the
whole machine; read from Linux's /proc once a second while it runs.

A process is counted in a group by its process group (locust, gunicorn and the Celery worker
each run in a session of their own) or, for PostgreSQL, by the database its backend serves
(the name in its command line). Between two readings a group gains what each of its processes
gained; a process first seen in the later reading counts from zero (it started in between),
so only the last second of a process that exited is missed.
"""

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Reading:
    at: float
    machine_busy: int  # jiffies, all CPUs
    machine_total: int
    groups: dict[str, dict[int, int]]  # group -> pid -> utime + stime (ticks)


def _machine() -> tuple[int, int]:
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _is_backend_of(pid: str, database: str) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return command.startswith("postgres:") and f" {database} " in command


@dataclass
class CpuMonitor:
    process_groups: dict[str, int]  # group name -> process group id
    database: str  # PostgreSQL backends serving this database are the group "database"
    readings: list[Reading] = field(default_factory=list)

    def read(self) -> None:
        by_pgid = {pgid: name for name, pgid in self.process_groups.items()}
        groups: dict[str, dict[int, int]] = {
            name: {} for name in [*self.process_groups, "database"]
        }
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:  # gone meanwhile
                continue
            name, rest = text[text.index("(") + 1 : text.rindex(")")], text.rsplit(")", 1)[1]
            fields = rest.split()  # fields[0] is the state (field 3 of proc(5)), pgrp is 5
            pid = stat.parent.name
            group = by_pgid.get(int(fields[2]))
            if group is None and name == "postgres" and _is_backend_of(pid, self.database):
                group = "database"
            if group:
                groups[group][int(pid)] = int(fields[11]) + int(fields[12])  # utime + stime
        busy, total = _machine()
        self.readings.append(Reading(time.time(), busy, total, groups))

    def usage(self, start: float, end: float) -> dict[str, float]:
        """Between the first and the last reading inside `start`..`end`: `seconds` of wall
        time, each group's CPU seconds, and `machine`, the share of all cores that was busy."""
        inside = [r for r in self.readings if start <= r.at <= end]
        if len(inside) < 2:
            return {}
        first, last = inside[0], inside[-1]
        usage = {"seconds": last.at - first.at}
        for group in first.groups:
            ticks = sum(
                now - before.groups[group].get(pid, 0)
                for before, after in zip(inside, inside[1:], strict=False)
                for pid, now in after.groups[group].items()
            )
            usage[group] = ticks / TICKS
        busy, total = (
            last.machine_busy - first.machine_busy,
            last.machine_total - first.machine_total,
        )
        return {**usage, "machine": busy / max(1, total)}
