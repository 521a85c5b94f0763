"""Training-data hygiene: PII and postal addresses redacted, duplicates merged, per-source caps, class balance."""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace

from streamdesk.feedback.config import FeedbackSettings
from streamdesk.feedback.models import ClassBalance, KtoExample
from streamdesk.guardrails import service as guardrails

_STREET_SUFFIX = (
    r"(?:(?:street|avenue|road|boulevard|lane|drive|court|way|place|terrace|circle|parkway|highway|square|trail"
    r"|crescent|close|alley|row|plaza|loop|pike)\b|(?:st|ave|rd|blvd|ln|dr|ct|pl|ter|cir|pkwy|hwy|sq|trl|cres)\b\.?)"
)
_NOT_A_STREET_NAME = (
    r"(?!(?:the|a|an|of|in|on|at|to|for|my|your|our|their|this|that|and|or|with|from|by|down|up|same|other"
    r"|days?|weeks?|months?|years?|hours?|minutes?|items?|times?|orders?|units?|dollars?|percent)\b)"
)
_UNIT = r"(?:,?\s*(?:apt|apartment|suite|ste|unit|floor|fl|room|rm|#)\.?\s*[A-Za-z0-9-]+)?"
ADDRESS_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            rf"\b\d{{1,6}}[A-Za-z]?\s+(?:{_NOT_A_STREET_NAME}[A-Za-z0-9.'-]+\s+){{0,3}}{_STREET_SUFFIX}{_UNIT}",
            re.IGNORECASE,
        ),
        "[ADDRESS]",
    ),
    (re.compile(r"\bp\.?\s*o\.?\s*box\s+\d+\b", re.IGNORECASE), "[ADDRESS]"),
    (re.compile(r"\b(?:apt|apartment|suite|ste|unit)\.?\s*#?\s*\d+[A-Za-z]?\b", re.IGNORECASE), "[ADDRESS]"),
    (re.compile(r"\b[A-Z][A-Za-z.'-]+(?:\s[A-Z][A-Za-z.'-]+){0,3},\s*[A-Z]{2},?\s+\d{5}(?:-\d{4})?\b"), "[ADDRESS]"),
    (re.compile(r"\b(zip|postal|post)(\s*code)?(\s*(is|:|#))?\s*\d{5}(?:-\d{4})?\b", re.IGNORECASE), r"\1\2\3 [ZIP]"),
    (re.compile(r"\b\d{5}-\d{4}\b"), "[ZIP]"),
    (re.compile(r"\b(?:GIR 0AA|[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]?\s+\d[ABD-HJLNP-UW-Z]{2})\b"), "[POSTCODE]"),
)
"""Postal address shapes: street lines, PO boxes, unit numbers, `City, ST 12345`, labelled ZIPs, UK postcodes."""


def redact_addresses(text: str) -> str:
    """The text with street addresses, PO boxes, unit numbers, ZIP and UK postcodes replaced by placeholders."""
    for pattern, replacement in ADDRESS_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_for_training(text: str) -> str:
    """Everything `guardrails.redact_pii` removes (emails, IBANs, cards, phones), then postal addresses."""
    return redact_addresses(guardrails.redact_pii(text))


def normalise(text: str) -> str:
    """Case-folded text with whitespace collapsed: what counts as the same content."""
    return " ".join(text.split()).casefold()


def content_digest(*, prompt: str, completion: str) -> str:
    """sha256 of the normalised prompt and completion; equal content, equal digest."""
    return hashlib.sha256(f"{normalise(prompt)}\x1f{normalise(completion)}".encode()).hexdigest()


def is_heldout(digest: str, *, percent: int) -> bool:
    """True for the `percent` share of digests kept for evaluation; stable, and duplicates land together."""
    return int(digest[:8], 16) % 100 < percent


def prepare(examples: Iterable[KtoExample], *, settings: FeedbackSettings) -> list[KtoExample]:
    """Examples ready to store: redacted, cut to `max_text_chars`, with content digest and held-out flag."""
    ready = []
    limit = settings.max_text_chars
    for example in examples:
        prompt = redact_for_training(example.prompt)[:limit]
        completion = redact_for_training(example.completion)[:limit]
        digest = content_digest(prompt=prompt, completion=completion)
        ready.append(
            replace(
                example,
                prompt=prompt,
                completion=completion,
                content_digest=digest,
                heldout=is_heldout(digest, percent=settings.heldout_percent),
            )
        )
    return ready


def deduplicate(examples: Sequence[KtoExample]) -> list[KtoExample]:
    """One example per content digest; the majority label wins, and content labelled both ways equally is dropped."""
    groups: dict[str, list[KtoExample]] = defaultdict(list)
    for example in examples:
        groups[example.content_digest].append(example)
    kept = []
    for group in groups.values():
        desirable = sum(example.label for example in group)
        undesirable = len(group) - desirable
        if desirable == undesirable:
            continue
        majority = desirable > undesirable
        kept.append(next(example for example in reversed(group) if example.label == majority))
    return kept


def apply_caps(
    examples: Sequence[KtoExample], *, per_customer: int, per_annotator: int
) -> tuple[list[KtoExample], int]:
    """At most `per_customer` examples per customer and `per_annotator` per deciding annotator; and how many dropped.

    Which ones stay is decided by content digest, not arrival order, so a flood cannot push earlier data out;
    examples with no customer (or no annotator) are not attributable and are not capped on that key.
    """
    customers: Counter[str] = Counter()
    annotators: Counter[str] = Counter()
    kept = []
    for example in sorted(examples, key=lambda e: e.content_digest):
        if example.customer_id is not None and customers[example.customer_id] >= per_customer:
            continue
        if example.annotator_id is not None and annotators[example.annotator_id] >= per_annotator:
            continue
        if example.customer_id is not None:
            customers[example.customer_id] += 1
        if example.annotator_id is not None:
            annotators[example.annotator_id] += 1
        kept.append(example)
    return kept, len(examples) - len(kept)


def class_balance(examples: Iterable[KtoExample], *, top: int = 5) -> ClassBalance:
    """Desirable and undesirable counts, per source, and the customers and annotators contributing most."""
    desirable = undesirable = 0
    sources: Counter[str] = Counter()
    customers: Counter[str] = Counter()
    annotators: Counter[str] = Counter()
    for example in examples:
        desirable += example.label
        undesirable += not example.label
        sources[example.source] += 1
        customers[example.customer_id or "-"] += 1
        annotators[example.annotator_id or "-"] += 1
    return ClassBalance(
        desirable=desirable,
        undesirable=undesirable,
        by_source=dict(sources),
        top_customers=dict(customers.most_common(top)),
        top_annotators=dict(annotators.most_common(top)),
    )
