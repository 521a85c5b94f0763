"""Builders for answers (from the Bitext support data), feedback signals, and a seeded PII corpus."""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from streamdesk.feedback.models import AnswerContext, FeedbackEvent, FeedbackKind

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
BITEXT = Path("support") / "bitext_customer_support_training_4514.csv"


def bitext_rows(shared_data: Path) -> list[dict[str, str]]:
    """The 4,514 Bitext rows: customer instruction, intent and the support response."""
    with (shared_data / BITEXT).open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def answer(
    n: int,
    row: Mapping[str, str],
    *,
    customer: str | None = "cust-1",
    adapter: str | None = "kto-1",
    answered_at: datetime = T0,
    completion: str | None = None,
) -> AnswerContext:
    """Answer `A-n` to ticket `T-n`: the Bitext instruction as prompt, its response as the draft."""
    return AnswerContext(
        answer_id=f"A-{n}",
        ticket_id=f"T-{n}",
        prompt=row["instruction"],
        completion=completion if completion is not None else row["response"],
        answered_at=answered_at,
        adapter_version=adapter,
        customer_id=customer,
    )


def signal(
    answer_id: str,
    kind: FeedbackKind,
    *,
    hours: float = 1.0,
    rating: int | None = None,
    edited_text: str | None = None,
    annotator: str | None = "op-1",
    event_id: str | None = None,
    adapter: str | None = None,
) -> FeedbackEvent:
    """A signal on `answer_id`, `hours` after T0."""
    return FeedbackEvent(
        event_id=event_id or f"{answer_id}:{kind}:{hours}",
        answer_id=answer_id,
        ticket_id="T-" + answer_id.split("-", 1)[1],
        kind=kind,
        rating=rating,
        edited_text=edited_text,
        annotator_id=annotator,
        adapter_version=adapter,
        occurred_at=T0 + timedelta(hours=hours),
    )


def lookup_of(
    answers: Sequence[AnswerContext],
) -> Callable[[psycopg.Connection, Sequence[str]], dict[str, AnswerContext]]:
    """An answer lookup over these answers (the agent's `answers` table is not part of this package)."""
    by_id = {a.answer_id: a for a in answers}

    def lookup(conn: psycopg.Connection, answer_ids: Sequence[str]) -> dict[str, AnswerContext]:
        return {answer_id: by_id[answer_id] for answer_id in answer_ids if answer_id in by_id}

    return lookup


def luhn_card(rng: random.Random) -> str:
    """A Luhn-valid 16-digit Visa-like number, grouped by four."""
    digits = [4] + [rng.randrange(10) for _ in range(14)]
    total = 0
    for position, digit in enumerate(reversed(digits)):
        total += (digit * 2 - 9 if digit * 2 > 9 else digit * 2) if position % 2 == 0 else digit
    digits.append((10 - total % 10) % 10)
    text = "".join(map(str, digits))
    return " ".join(text[i : i + 4] for i in range(0, 16, 4))


STREETS = ("Maple", "Oak", "Elm", "Cedar", "Sunset", "Lakeview", "Willow", "Highland", "Main", "Park")
SUFFIXES = ("Street", "Avenue", "Road", "Drive", "Lane", "Boulevard", "St.", "Ave", "Court", "Way")
CITIES = (("Fort Worth", "TX"), ("San Diego", "CA"), ("Columbus", "OH"), ("Denver", "CO"), ("Boston", "MA"))
IBANS = ("DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32", "FR14 2004 1010 0505 0001 3M02 606")


def pii_record(rng: random.Random) -> dict[str, str]:
    """One person's PII in the shapes customers write it."""
    user = f"{rng.choice(['mei', 'omar', 'ines', 'liam', 'ava'])}.{rng.randrange(10_000)}"
    area, mid, last = rng.randrange(201, 989), rng.randrange(200, 999), rng.randrange(1000, 9999)
    city, state = rng.choice(CITIES)
    return {
        "email": f"{user}@example-mail.com",
        "phone": rng.choice([f"+1 {area} {mid} {last}", f"({area}) {mid}-{last}", f"{area}-{mid}-{last}"]),
        "card": luhn_card(rng),
        "iban": rng.choice(IBANS),
        "street": f"{rng.randrange(10, 9999)} {rng.choice(STREETS)} {rng.choice(SUFFIXES)}",
        "unit": f"Apt {rng.randrange(1, 999)}",
        "city_line": f"{city}, {state} {rng.randrange(10000, 99999)}",
    }


def with_pii(text: str, pii: Mapping[str, str], *, rng: random.Random) -> str:
    """`text` with the PII woven in as a customer or agent would write it."""
    templates = (
        "My email is {email} and my phone is {phone}.",
        "Please ship it to {street}, {unit}, {city_line}.",
        "Charge card {card}, or refund to IBAN {iban}.",
        "Call me at {phone} or write to {email}; I live at {street}, {city_line}.",
    )
    extra = " ".join(template.format(**pii) for template in rng.sample(templates, 2))
    return f"{text} {extra}"
