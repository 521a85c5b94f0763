"""Time parsing shared by connectors: ISO strings, SQL-style timestamps and epoch numbers, all in UTC."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import ConnectorError
from connectors.versions import to_int

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_FRACTION = re.compile(r"[T ][0-9]{2}:[0-9]{2}:[0-9]{2}\.([0-9]+)")
_EPOCH_NUMBER = re.compile(r"-?[0-9]+")


def from_epoch_ms(ms: int) -> datetime:
    """A UTC datetime for epoch milliseconds; ConnectorError when outside years 1-9999."""
    try:
        return EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        raise ConnectorError(f"epoch milliseconds {ms} are outside the years 1-9999; send epoch ms") from None


def epoch_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware (or naive = UTC) datetime."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // _MS


def parse_iso(text: str, *, what: str) -> datetime:
    """An ISO-8601 or 'YYYY-MM-DD HH:MM:SS' string as an aware datetime (naive means UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConnectorError(
            f"{what} {text!r} is not an ISO-8601 date-time; send e.g. '2025-01-08T10:12:07Z'"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_time(value: Any, *, what: str, unit: str = "ms") -> datetime:
    """A datetime from an ISO string or an epoch number in `unit` ('ms' or 's')."""
    if isinstance(value, bool) or value is None:
        raise ConnectorError(f"{what} is missing or not a time: {value!r}; send ISO-8601 or epoch {unit}")
    if isinstance(value, int | float):
        ms = value * 1000 if unit == "s" else value
        if isinstance(ms, float) and not math.isfinite(ms):
            raise ConnectorError(f"{what} {value!r} is outside the years 1-9999; send ISO-8601 or epoch {unit}")
        return from_epoch_ms(int(ms))
    if isinstance(value, str):
        if _EPOCH_NUMBER.fullmatch(value.strip()):
            return parse_time(to_int(value, what=what), what=what, unit=unit)
        return parse_iso(value, what=what)
    raise ConnectorError(f"{what} must be an ISO string or epoch {unit}, got {type(value).__name__}")


def time_ms(value: Any, *, what: str, unit: str = "ms") -> int:
    """Epoch milliseconds from an ISO string or an epoch number in `unit`."""
    return epoch_ms(parse_time(value, what=what, unit=unit))


def sub_ms_nanos(text: str) -> int:
    """The nanoseconds below the millisecond in an ISO string's fraction ('...07.672717030Z' -> 717030)."""
    match = _FRACTION.search(text)
    if not match:
        return 0
    return int(match.group(1)[:9].ljust(9, "0")) % 1_000_000
