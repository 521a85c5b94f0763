"""Domain packs by name: each subpackage exposes `PACK` (a `DomainPack`); the settings name the one in use."""

from __future__ import annotations

import importlib
from functools import lru_cache

from streamdesk.agent.exceptions import UnknownDomainError
from streamdesk.agent.packs import DomainPack


@lru_cache(maxsize=8)
def load_pack(name: str) -> DomainPack:
    """The pack of `streamdesk.domains.<name>.pack`."""
    try:
        module = importlib.import_module(f"streamdesk.domains.{name}.pack")
    except ModuleNotFoundError:
        raise UnknownDomainError(
            f"no domain pack {name!r}; add streamdesk/domains/{name}/pack.py or set STREAMDESK_AGENT__DOMAIN"
        ) from None
    pack = module.PACK
    if not isinstance(pack, DomainPack):
        raise UnknownDomainError(f"streamdesk.domains.{name}.pack.PACK is not a DomainPack")
    return pack


def get_pack() -> DomainPack:
    """The pack named by `STREAMDESK_AGENT__DOMAIN` (default retail)."""
    from streamdesk.agent import config as agent_config

    return load_pack(agent_config.agent_settings().domain)
