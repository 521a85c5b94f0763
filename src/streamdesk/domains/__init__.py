"""Domain packs by name: the settings name the pack in use (`STREAMDESK_AGENT__DOMAIN`, default retail).

A pack is a `DomainPack` object, `PACK` in `streamdesk/domains/<name>/pack.py`; `PACKS` lists the built-in
ones, and a `module:attribute` spec names a pack that lives elsewhere.
"""

from __future__ import annotations

import importlib
from functools import lru_cache

from streamdesk import config as root_config
from streamdesk.agent.exceptions import UnknownDomainError
from streamdesk.agent.packs import DomainPack

PACKS: dict[str, str] = {"retail": "streamdesk.domains.retail.pack:PACK"}
"""Built-in packs: name -> `module:attribute` of the `DomainPack`."""


@lru_cache(maxsize=8)
def load_pack(name: str) -> DomainPack:
    """The pack called `name` in `PACKS`, or the one a `module:attribute` spec names."""
    spec = PACKS.get(name, name)
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise UnknownDomainError(f"no domain pack {name!r}; use one of {', '.join(PACKS)} or a 'module:attribute' spec")
    try:
        pack = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise UnknownDomainError(f"domain pack {name!r} ({spec}) cannot be loaded: {exc}") from None
    if not isinstance(pack, DomainPack):
        raise UnknownDomainError(f"{spec} is a {type(pack).__name__}, not a DomainPack")
    return pack


def get_pack() -> DomainPack:
    """The pack named by `STREAMDESK_AGENT__DOMAIN` (default retail)."""
    return load_pack(root_config.agent_settings().domain)
