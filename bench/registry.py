"""The scenario registry: a scenario is a function registered with `@scenario(...)`.

Every module in `bench/scenarios/` is imported by `load_scenarios()`, so adding a file
with a decorated function is all it takes to add a scenario. The function returns the
measured numbers (at least `n` and `seconds`); the runner adds the name, the targets and
whether they were met.
"""

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Scenario:
    name: str
    func: Callable[[], Row]
    description: str = ""
    # "<metric>_max" / "<metric>_min" -> bound on row[<metric>], e.g. {"seconds_max": 90}.
    targets: dict[str, float] = field(default_factory=dict)
    # Lower runs first in a full run; lets a scenario that builds data precede its readers.
    order: int = 100


SCENARIOS: dict[str, Scenario] = {}


def scenario(
    name: str, *, targets: dict[str, float] | None = None, description: str = "", order: int = 100
) -> Callable[[Callable[[], Row]], Callable[[], Row]]:
    """Register the decorated function as the benchmark scenario `name`."""

    def register(func: Callable[[], Row]) -> Callable[[], Row]:
        if name in SCENARIOS:
            raise ValueError(f"Benchmark scenario {name!r} is registered twice.")
        for key in targets or {}:
            if not key.endswith(("_max", "_min")):
                raise ValueError(f"Target {key!r} of {name!r} must end in _max or _min.")
        SCENARIOS[name] = Scenario(
            name=name,
            func=func,
            description=description or (func.__doc__ or "").strip().split("\n")[0],
            targets=dict(targets or {}),
            order=order,
        )
        return func

    return register


def load_scenarios() -> dict[str, Scenario]:
    """Import every module of bench.scenarios (which registers its scenarios), ordered."""
    package = importlib.import_module("bench.scenarios")
    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{module.name}")
    return dict(sorted(SCENARIOS.items(), key=lambda item: (item[1].order, item[0])))


def check_targets(row: Row, targets: dict[str, float]) -> list[str]:
    """The targets the row misses, as readable sentences; empty when all are met."""
    missed = []
    for key, bound in targets.items():
        metric, kind = key.rsplit("_", 1)
        value = row.get(metric)
        if value is None:
            missed.append(f"{metric} was not measured")
        elif kind == "max" and value > bound:
            missed.append(f"{metric} {value:g} > {bound:g}")
        elif kind == "min" and value < bound:
            missed.append(f"{metric} {value:g} < {bound:g}")
    return missed
