"""Version-list helpers: integer coercion and the stable text form used in event ids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.base import ConnectorError


def to_int(value: Any, *, what: str) -> int:
    """`value` as an int (ints, integral floats, numeric strings); ConnectorError naming `what` otherwise."""
    if isinstance(value, bool):
        raise ConnectorError(f"{what} must be an integer, got boolean {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                number = float("nan")
            if number.is_integer():
                return int(number)
    raise ConnectorError(f"{what} must be an integer, got {value!r}; send a whole number")


def version_tag(version: Sequence[int]) -> str:
    """The version as dotted text, e.g. [24023128, 556] -> '24023128.556'."""
    return ".".join(str(part) for part in version)
