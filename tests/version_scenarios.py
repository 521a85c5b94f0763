"""Version-ordering scenarios that every versioned store (documents, entities) must pass alike."""

from __future__ import annotations

import pytest
from _pytest.mark import ParameterSet

Step = tuple[str, list[int], str | None]
Final = tuple[bool, list[int], str | None]
Scenario = tuple[str, list[Step], Final, Final | None]


def version_scenarios(noun: str, *extra: Scenario) -> list[Scenario]:
    """(name, steps as (op, version, value key), final (deleted, version, value key), final when in one batch).

    `noun` names the stored record in the scenario ids; `extra` scenarios follow the shared ones.
    """
    return [
        ("late older upsert ignored", [("upsert", [2], "b"), ("upsert", [1], "a")], (False, [2], "b"), None),
        (
            "equal version is a no-op",
            [("upsert", [2], "a"), ("upsert", [2], "b")],
            (False, [2], "a"),
            (False, [2], "b"),
        ),
        (
            "delete then stale upsert ignored",
            [("upsert", [1], "a"), ("delete", [3], None), ("upsert", [2], "b")],
            (True, [3], None),
            None,
        ),
        (
            "re-create after delete with a higher version",
            [("upsert", [1], "a"), ("delete", [2], None), ("upsert", [3], "b")],
            (False, [3], "b"),
            None,
        ),
        (
            "tombstone deletes at the stored version",
            [("upsert", [4], "a"), ("tombstone", [], None)],
            (True, [4], None),
            None,
        ),
        (f"tombstone of an unseen {noun}", [("tombstone", [], None)], (True, [0], None), None),
        (f"delete of an unseen {noun}", [("delete", [7], None)], (True, [7], None), None),
        ("older delete ignored", [("upsert", [5], "a"), ("delete", [4], None)], (False, [5], "a"), None),
        (
            "versions compare lexicographically",
            [("upsert", [1, 9], "a"), ("upsert", [2, 0], "b"), ("upsert", [1, 10], "c")],
            (False, [2, 0], "b"),
            None,
        ),
        (
            "tombstone then late upsert",
            [("upsert", [4], "a"), ("tombstone", [], None), ("upsert", [3], "b")],
            (True, [4], None),
            None,
        ),
        *extra,
    ]


def ordering_cases(scenarios: list[Scenario]) -> list[ParameterSet]:
    """(steps, together, expected final) for each scenario applied one batch per event and as one batch."""
    return [
        pytest.param(steps, together, final_together if together and final_together else final, id=f"{name}-{label}")
        for name, steps, final, final_together in scenarios
        for together, label in ((False, "one batch per event"), (True, "one batch"))
    ]
