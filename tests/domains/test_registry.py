"""The pack registry: the setting names the pack, a `module:attribute` spec names one from elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamdesk import config as root_config
from streamdesk import domains
from streamdesk.agent.exceptions import UnknownDomainError
from streamdesk.config import AgentSettings, Settings


def test_retail_is_the_default_pack() -> None:
    pack = domains.get_pack()
    assert pack.name == "retail" and pack is domains.load_pack("retail")
    assert "cancel_pending_order" in pack.tool_names and pack.rbac_path.is_file()


def test_a_spec_names_a_pack_that_lives_elsewhere() -> None:
    pack = domains.load_pack("tests.agent.test_packs:INVOICES")
    assert pack.name == "invoices"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("erp", "no domain pack 'erp'; use one of retail"),
        ("tests.nowhere:PACK", "cannot be loaded"),
        ("streamdesk.domains:PACKS", "is a dict, not a DomainPack"),
    ],
)
def test_unknown_packs_are_named_with_the_fix(name: str, message: str) -> None:
    with pytest.raises(UnknownDomainError, match=message):
        domains.load_pack(name)


def test_the_policy_path_setting_overrides_the_packs_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = tmp_path / "policy.md"
    policy.write_text("# House rules\nBe kind.\n")
    monkeypatch.setattr(root_config, "agent_settings", lambda settings=None: AgentSettings(policy_path=policy))
    assert domains.get_pack().policy_text() == "# House rules\nBe kind."
    monkeypatch.undo()
    assert domains.get_pack().policy_text().startswith("# Retail agent policy")


def test_the_domain_setting_names_the_pack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMDESK_AGENT__DOMAIN", "tests.agent.test_packs:INVOICES")
    assert root_config.agent_settings(Settings()).domain == "tests.agent.test_packs:INVOICES"
    monkeypatch.setattr(root_config, "agent_settings", lambda settings=None: AgentSettings(domain="invoices-spec"))
    with pytest.raises(UnknownDomainError, match="'invoices-spec'"):
        domains.get_pack()
