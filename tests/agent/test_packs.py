"""The core serves whichever domain pack it receives: a second, tiny pack (invoices) drives prompt and tool menu."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from streamdesk.agent import intents, packs, prompts, tools
from streamdesk.agent.models import Message, Tool, ToolCall, ToolContext, arguments_schema
from streamdesk.agent.packs import DomainPack, IntentRules, Lookup, Renderers


@dataclass(frozen=True)
class InvoiceFeatures:
    """What the invoice rules find: an invoice number and whether the ticket disputes it."""

    text: str
    intents: tuple[str, ...] = ()
    conditional: tuple[str, ...] = ()

    @property
    def primary(self) -> str | None:
        return self.intents[0] if self.intents else None

    @property
    def wants_write(self) -> bool:
        return "dispute" in self.intents

    @property
    def needs_confirmation(self) -> bool:
        return False

    def to_json(self) -> dict[str, Any]:
        return {"intents": list(self.intents)}


def get_invoice(conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    """Look up an invoice by its number."""
    return {"invoice": arguments["number"], "status": "open"}


def dispute_invoice(conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    """Dispute an invoice (a command to the ERP)."""
    return {"invoice": arguments["number"], "status": "disputed"}


NUMBER = {"number": {"type": "string", "pattern": "^INV-[0-9]{4}$"}}
INVOICE_TOOLS = (
    Tool("get_invoice", str(get_invoice.__doc__), arguments_schema(NUMBER), "read", get_invoice),
    Tool("dispute_invoice", str(dispute_invoice.__doc__), arguments_schema(NUMBER), "write", dispute_invoice,
         high_risk=True, effect="command"),
)  # fmt: skip


def features(text: str) -> InvoiceFeatures:
    return InvoiceFeatures(text=text, intents=("dispute",) if "dispute" in text.lower() else ())


def next_read(found: Any, *, history: Any, knowledge: bool = True, customer_id: str | None = None) -> ToolCall | None:
    return None


def lookups(found: Any, calls: list[Lookup]) -> Message:
    return {"role": "user", "content": f"{len(calls)} look-ups"}


INVOICES = DomainPack(
    name="invoices",
    role="You are the accounts-receivable agent of a wholesaler.",
    rules="\n## Core rules\n- Dispute only invoices the tools returned.\n",
    prompt_tag="invoice-agent-1",
    tools=INVOICE_TOOLS,
    intents=IntentRules(
        priority=("dispute",),
        features=features,
        next_read=next_read,
        offered={"dispute": ("dispute_invoice",)},
        base_tools=("get_invoice",),
        details={"dispute": frozenset()},
        policy_sections={"dispute": ("Disputes",)},
        change_words={"dispute": "a dispute"},
    ),
    renderers=Renderers(result_text=lambda tool, result, *, error=None: f"{tool}: {result}", lookups=lookups,
                        facts=lambda history, found: []),
    known=lambda results, *, found, searched: None,
    policy_text=lambda: "# Invoices\n## Disputes\nDispute within 30 days.",
    rbac_path=Path("unused.yaml"),
)  # fmt: skip


def test_the_prompt_is_the_packs() -> None:
    system = prompts.system_prompt(tools=list(INVOICES.tools), pack=INVOICES)
    assert system.startswith("You are the accounts-receivable agent of a wholesaler.\n\n## Core rules\n")
    assert "- dispute_invoice(number): Dispute an invoice" in system and "retail" not in system
    message = prompts.policy_message(["dispute"], pack=INVOICES)
    assert message == {"role": "user", "content": "Policy for this request:\n## Disputes\nDispute within 30 days."}
    assert prompts.prompt_version(tools=list(INVOICES.tools), pack=INVOICES).startswith("invoice-agent-1+")


def test_the_tool_menu_follows_the_packs_intents() -> None:
    registry = tools.default_registry(INVOICES)
    assert registry.names() == ["get_invoice", "dispute_invoice", "update_ticket", "escalate"]
    writes = {tool.name for tool in registry if tool.kind == "write"}
    found = INVOICES.intents.recognise("Please dispute INV-0001")
    offered = intents.model_tools(found, permitted=registry.names(), writes=writes, pack=INVOICES)
    assert offered == ["get_invoice", "dispute_invoice"]
    unclear = intents.model_tools(features("hello"), permitted=registry.names(), writes=writes, pack=INVOICES)
    assert unclear == ["get_invoice", "update_ticket", "escalate"]


def test_a_tool_result_reads_as_the_pack_renders_it() -> None:
    call = ToolCall(tool="get_invoice", arguments={"number": "INV-0001"})
    message = prompts.tool_result_message(call=call, result={"status": "open"}, pack=INVOICES)
    assert "get_invoice: {'status': 'open'}" in message["content"]


def test_write_tools_say_where_they_land() -> None:
    assert [tool.effect for tool in INVOICE_TOOLS] == ["local", "command"]
    assert packs.resolve(INVOICES) is INVOICES and packs.resolve(None).name == "retail"
