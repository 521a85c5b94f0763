"""The value transforms a declarative mapping may apply, by name."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from connectors.base import ConnectorError
from connectors.text import html_to_text
from connectors.times import from_epoch_ms, time_ms
from connectors.versions import to_int

Transform = Callable[[Any, str], Any]  # (value, separator) -> value; None passes through unless noted


def _str(value: Any, sep: str) -> Any:
    if isinstance(value, dict | list):
        raise ConnectorError(f"{type(value).__name__} value {value!r:.60} is not a scalar")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _float(value: Any, sep: str) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConnectorError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise ConnectorError(f"{value!r:.40} is not a finite number; send a number or null")
    return number


def _bool(value: Any, sep: str) -> Any:
    text = str(value).strip().lower()
    if text in {"true", "1", "yes", "y", "t"}:
        return True
    if text in {"false", "0", "no", "n", "f", ""}:
        return False
    raise ConnectorError(f"{value!r} is not a boolean")


def _iso_to_epoch_ms(value: Any, sep: str) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    return time_ms(value, what="value")


def _join(value: Any, sep: str) -> Any:
    items = value if isinstance(value, list) else [value]
    return sep.join(str(item) for item in items if item not in (None, ""))


def _split(value: Any, sep: str) -> Any:
    if isinstance(value, list):
        return value
    return [part.strip() for part in str(value).split(sep or None) if part.strip()]


def _coalesce(value: Any, sep: str) -> Any:
    items = value if isinstance(value, list) else [value]
    return next((item for item in items if item not in (None, "")), None)


# transforms that see None (the others return None for None)
NONE_AWARE = frozenset({"coalesce", "join"})

TRANSFORMS: dict[str, Transform] = {
    "str": _str,
    "int": lambda value, sep: None if value == "" else to_int(value, what="value"),
    "float": _float,
    "bool": _bool,
    "lower": lambda value, sep: str(value).lower(),
    "upper": lambda value, sep: str(value).upper(),
    "strip": lambda value, sep: str(value).strip(),
    "blank_to_none": lambda value, sep: None if isinstance(value, str) and not value.strip() else value,
    "epoch_ms_to_iso": lambda value, sep: from_epoch_ms(to_int(value, what="epoch ms")).isoformat(),
    "iso_to_epoch_ms": _iso_to_epoch_ms,
    "html_to_text": lambda value, sep: html_to_text(str(value)),
    "join": _join,
    "split": _split,
    "coalesce": _coalesce,
}


def apply_transform(name: str, value: Any, *, sep: str) -> Any:
    """`value` after transform `name`."""
    if value is None and name not in NONE_AWARE:
        return None
    return TRANSFORMS[name](value, sep)
