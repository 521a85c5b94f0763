"""Hygiene: addresses and PII redacted, duplicates merged by majority, per-source caps, the balance report."""

from __future__ import annotations

from dataclasses import replace

import pytest

from streamdesk.feedback import hygiene
from streamdesk.feedback.models import KtoExample


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Ship it to 445 Maple Drive, Suite 394, Fort Worth, TX 76176 please",
            "Ship it to [ADDRESS], [ADDRESS] please",
        ),
        ("I live at 123 main street", "I live at [ADDRESS]"),
        ("Send it to PO Box 1234", "Send it to [ADDRESS]"),
        ("my zip code is 90210", "my zip code is [ZIP]"),
        ("London SW1A 1AA", "London [POSTCODE]"),
        ("call +1 (555) 123-4567 or mail a.b@x.com", "call [PHONE] or mail [EMAIL]"),
        ("card 4111 1111 1111 1111", "card [CARD]"),
    ],
)
def test_addresses_and_pii_are_redacted(text: str, expected: str) -> None:
    assert hygiene.redact_for_training(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2 blocks down the street",
        "I bought 3 shirts in the same way",
        "It took 3 days on the road",
        "order #W2890441 item 1434748144 costs 54.04",
        "Return 2 items by Friday",
    ],
)
def test_ordinary_text_and_ids_are_left_alone(text: str) -> None:
    assert hygiene.redact_for_training(text) == text


def example(n: int, *, label: bool = True, customer: str | None = "c", annotator: str | None = "a") -> KtoExample:
    prompt, completion = f"question {n}", f"answer {n}"
    return KtoExample(
        answer_id=f"A-{n}",
        source="draft",
        ticket_id=f"T-{n}",
        prompt=prompt,
        completion=completion,
        label=label,
        adapter_version=None,
        policy_version="labels-v1",
        decided_by="thumbs_up:e",
        signal_ids=("e",),
        customer_id=customer,
        annotator_id=annotator,
        content_digest=hygiene.content_digest(prompt=prompt, completion=completion),
    )


def test_duplicates_merge_and_the_majority_label_wins() -> None:
    same = [replace(example(1, label=label), answer_id=f"A-{i}") for i, label in enumerate([True, True, False])]
    tied = [replace(example(2, label=label), answer_id=f"B-{i}") for i, label in enumerate([True, False])]
    kept = hygiene.deduplicate([*same, *tied, example(3)])
    assert sorted((e.prompt, e.label) for e in kept) == [("question 1", True), ("question 3", True)]


def test_digest_ignores_case_and_whitespace_and_decides_the_heldout_split() -> None:
    a = hygiene.content_digest(prompt="Where is  my order?", completion="It ships today.")
    b = hygiene.content_digest(prompt="where is my ORDER?", completion=" It ships\ttoday. ")
    assert a == b
    shares = [hygiene.is_heldout(example(n).content_digest, percent=20) for n in range(1000)]
    assert 150 < sum(shares) < 250


def test_caps_limit_each_customer_and_annotator() -> None:
    flood = [example(n, label=False, customer="mallory", annotator=f"x{n}") for n in range(100)]
    normal = [example(1000 + n, customer=f"c{n}", annotator=f"y{n}") for n in range(10)]
    kept, dropped = hygiene.apply_caps(flood + normal, per_customer=5, per_annotator=50)
    assert sum(e.customer_id == "mallory" for e in kept) == 5 and dropped == 95
    assert sum(e.customer_id != "mallory" for e in kept) == 10
    one_annotator = [example(n, customer=f"c{n}", annotator="bot") for n in range(30)]
    kept, dropped = hygiene.apply_caps(one_annotator, per_customer=5, per_annotator=7)
    assert len(kept) == 7 and dropped == 23


def test_caps_keep_the_same_examples_whatever_the_arrival_order() -> None:
    flood = [example(n, customer="mallory") for n in range(40)]
    first, _ = hygiene.apply_caps(flood, per_customer=5, per_annotator=100)
    second, _ = hygiene.apply_caps(list(reversed(flood)), per_customer=5, per_annotator=100)
    assert first == second


def test_class_balance_report() -> None:
    report = hygiene.class_balance([example(1), example(2, label=False), example(3, customer="big")]).to_json()
    assert report["desirable"] == 2 and report["undesirable"] == 1 and report["total"] == 3
    assert report["minority_fraction"] == pytest.approx(1 / 3, abs=1e-4)
    assert report["by_source"] == {"draft": 3} and report["top_customers"]["c"] == 2
