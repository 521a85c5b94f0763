"""The retail pack as the agent core receives it (`PACK`), and where its policy text comes from."""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path

from streamdesk import config as root_config
from streamdesk.agent.packs import DomainPack
from streamdesk.domains.retail import approvals, intents, narrowing, plans, renderers, tools
from streamdesk.seed import config as seed_config

HERE = Path(__file__).resolve().parent
POLICY_FILE = seed_config.BUNDLED_DIR / "tau2_retail_policy.md"
"""The τ²-bench retail policy (MIT), bundled with the seed data."""
ROLE = "You are the customer support agent of an online retail store."
RULES = """
## Core rules
- Help only the authenticated customer, with their own profile, orders and products.
- Act only on pending orders (cancel, modify) or delivered orders (return, exchange); check the status first.
- Use only ids and facts that the tools returned; never make up information.
- Transfer to a human agent only when the request is outside what your tools can do.
"""
BITEXT_TOOLS: dict[str, tuple[str, ...]] = {
    "cancel_order": ("cancel_pending_order",),
    "get_refund": ("return_delivered_order_items",),
    "track_order": ("get_order_details",),
    "contact_human_agent": ("transfer_to_human_agents",),
}
"""Bitext intent -> the tool that carries it out (refunds of delivered goods are returns in the retail world)."""


INTENT_RULES = dataclasses.replace(
    intents.RULES, next_write=plans.next_write, revise_held=plans.revise_held, revision=plans.revision
)
"""The intent rules: the reads of `intents.py`, then the writes of `plans.py` (and their revision in a later turn)."""


def policy_text() -> str:
    """The policy the agent follows: `STREAMDESK_AGENT__POLICY_PATH` if set, else the bundled τ²-bench policy."""
    return _read_policy(root_config.agent_settings().policy_path or POLICY_FILE)


@lru_cache(maxsize=4)
def _read_policy(path: Path) -> str:
    return path.read_text().strip()


PACK = DomainPack(
    name="retail", role=ROLE, rules=RULES, prompt_tag="retail-agent-2",
    tools=tools.TOOLS, intents=INTENT_RULES, renderers=renderers.RENDERERS, known=narrowing.known_for,
    policy_text=policy_text, rbac_path=HERE / "rbac.yaml",
    approvals=approvals.APPROVALS, amount=approvals.derived_amount, untrusted_results=frozenset({"calculate"}),
    labelled_intents=BITEXT_TOOLS, eval_converters=("taubench", "bitext", "injections"),
)  # fmt: skip
"""τ²-bench retail: the pack `STREAMDESK_AGENT__DOMAIN=retail` (the default) loads."""
