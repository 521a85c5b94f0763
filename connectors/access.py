"""Access scope of documents: parse levels and `access:<level>` / `group:<name>` tags."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from connectors.base import ConnectorError
from streamdesk.contracts import Access

LEVELS = ("public", "internal", "restricted")
SEPARATORS = (":", "-", ".", "_")


def access_level(value: Any, *, what: str) -> str:
    """A valid access level from `value` (case-insensitive); ConnectorError naming `what` otherwise."""
    level = str(value).strip().lower()
    if level not in LEVELS:
        raise ConnectorError(f"{what} {value!r} is not an access level; use one of {', '.join(LEVELS)}")
    return level


def make_access(level: Any, groups: Iterable[Any] = (), *, what: str = "access level") -> Access:
    """An Access record from a level and group names (groups are kept sorted and unique)."""
    level_name = access_level(level, what=what)
    names = sorted({str(group).strip() for group in groups if str(group).strip()})
    return Access(level=cast(Any, level_name), groups=names)


def _tag_value(tag: str, prefix: str) -> str | None:
    lowered = tag.lower()
    for sep in SEPARATORS:
        if lowered.startswith(prefix + sep):
            return tag[len(prefix) + 1 :].strip()
    return None


def access_from_tags(tags: Iterable[str], *, default: Access) -> Access:
    """Access named by tags like 'access:restricted' and 'group:billing'; `default` when tags say nothing.

    Groups without an explicit level mean restricted. Separators ':', '-', '.', '_' are all accepted
    because some systems (Contentful tag ids) forbid colons.
    """
    level: str | None = None
    groups: list[str] = []
    for tag in tags:
        if (value := _tag_value(tag, "access")) is not None:
            level = access_level(value, what=f"tag {tag!r}: access level")
        elif (value := _tag_value(tag, "group")) is not None and value:
            groups.append(value)
    if level is None and not groups:
        return default
    if level is None:
        level = "restricted"
    return make_access(level, groups)
