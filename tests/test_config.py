"""Settings are read once per process: a later change of the environment shows only after `reset_settings`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from streamdesk.agent.answer_config import get_answer_settings
from streamdesk.audit.config import get_audit_settings
from streamdesk.config import get_settings, reset_settings
from streamdesk.console.config import get_console_settings
from streamdesk.feedback.config import get_feedback_settings
from streamdesk.guardrails.config import get_guardrail_settings
from streamdesk.identity.config import get_identity_settings
from streamdesk.policy.config import get_policy_settings
from streamdesk.retrieval.config import get_retrieval_settings
from streamdesk.training.config import get_training_settings
from streamdesk.web.config import get_api_settings

# (getter, variable, field, two settings of the variable and the value each reads as)
SECTIONS: list[tuple[Callable[[], Any], str, str, tuple[str, Any], tuple[str, Any]]] = [
    (get_settings, "STREAMDESK_API_PORT", "api_port", ("8101", 8101), ("8102", 8102)),
    (
        get_identity_settings,
        "STREAMDESK_IDENTITY__AGENT_ID",
        "agent_id",
        ("bot-one", "bot-one"),
        ("bot-two", "bot-two"),
    ),
    (get_training_settings, "STREAMDESK_TRAINING__MIN_NEW_EXAMPLES", "min_new_examples", ("10", 10), ("20", 20)),
    (get_policy_settings, "STREAMDESK_POLICY__ALWAYS_APPROVE", "always_approve", ('["a"]', ["a"]), ('["b"]', ["b"])),
    (get_feedback_settings, "STREAMDESK_FEEDBACK__CSAT_UNDESIRABLE_MAX", "csat_undesirable_max", ("1", 1), ("3", 3)),
    (get_audit_settings, "STREAMDESK_AUDIT__CHECKPOINT_EVERY", "checkpoint_every", ("3", 3), ("7", 7)),
    (get_api_settings, "STREAMDESK_API__JWT_ROLES_CLAIM", "jwt_roles_claim", ("roles", "roles"), ("scopes", "scopes")),
    (get_retrieval_settings, "STREAMDESK_RETRIEVAL__EF_SEARCH", "ef_search", ("100", 100), ("200", 200)),
    (get_guardrail_settings, "STREAMDESK_GUARDRAILS__EXCERPT_CHARS", "excerpt_chars", ("40", 40), ("80", 80)),
    (get_console_settings, "STREAMDESK_CONSOLE__SESSION_MAX_AGE_S", "session_max_age_s", ("600", 600), ("900", 900)),
    (get_answer_settings, "STREAMDESK_ANSWER__MAX_STEPS", "max_steps", ("2", 2), ("3", 3)),
]


@pytest.mark.parametrize(("getter", "variable", "field", "first", "second"), SECTIONS, ids=[s[1] for s in SECTIONS])
def test_a_section_is_read_once_until_reset(
    getter: Callable[[], Any],
    variable: str,
    field: str,
    first: tuple[str, Any],
    second: tuple[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable, first[0])
    reset_settings()
    read = getter()
    monkeypatch.setenv(variable, second[0])
    assert getter() is read and getattr(read, field) == first[1]
    reset_settings()
    assert getattr(getter(), field) == second[1]


def test_one_reset_forgets_every_section(monkeypatch: pytest.MonkeyPatch) -> None:
    before = [getter() for getter, *_ in SECTIONS]
    for _, variable, _, _, (value, _) in SECTIONS:
        monkeypatch.setenv(variable, value)
    assert all(getter() is read for (getter, *_), read in zip(SECTIONS, before, strict=True))
    reset_settings()
    assert [getattr(getter(), field) for getter, _, field, *_ in SECTIONS] == [read for *_, (_, read) in SECTIONS]
