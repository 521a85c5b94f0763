"""PII redaction: emails, phones in several formats, Luhn-valid cards and IBANs go; retail ids stay."""

from __future__ import annotations

import logging

import pytest

from streamdesk.guardrails import service as guardrails

PII = {
    "EMAIL": (
        "write to {} please",
        ["mei.davis@example.com", "john.doe+orders@mail.example.co.uk", "X_Y-Z@sub.domain.io"],
    ),
    "PHONE": (
        "call me on {} today",
        [
            "+1 (555) 123-4567",
            "(555) 123-4567",
            "555-123-4567",
            "555.123.4567",
            "1-555-123-4567",
            "+44 20 7946 0958",
            "020 7946 0958",
            "+4915112345678",
            "+33 6 12 34 56 78",
            "06 12 34 56 78",
        ],
    ),
    "CARD": (
        "card {} was charged",
        ["4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111", "5500 0000 0000 0004", "340000000000009"],
    ),
    "IBAN": ("pay to {}.", ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "gb82west12345698765432"]),
}
"""Each kind's placeholder, the sentence it is tested in, and values of that kind."""


@pytest.mark.parametrize(("kind", "value"), [(kind, value) for kind, (_, values) in PII.items() for value in values])
def test_emails_phones_luhn_valid_cards_and_ibans_are_redacted(kind: str, value: str) -> None:
    sentence = PII[kind][0]
    assert guardrails.redact_pii(sentence.format(value)) == sentence.format(f"[{kind}]")


def test_luhn_invalid_numbers_are_kept() -> None:
    assert guardrails.redact_pii("ref 4111111111111112") == "ref 4111111111111112"


@pytest.mark.parametrize(
    "text",
    [
        "order #W1234567 is late",
        "order W2890441 and #W1267569",
        "item 9523456873 of product 6938111410",
        "tracking 642796688644",
        "user mei_davis_8935 paid with credit_card_1061405",
        "total 1619.34 on 2024-05-12 at 14:30",
        "IBAN-like but wrong GB00 WEST 1234 5698 7654 32",
        "version 1.2.3, invoice INV-2024-0001",
    ],
)
def test_retail_ids_amounts_and_dates_are_kept(text: str) -> None:
    assert guardrails.redact_pii(text) == text


def test_the_log_filter_redacts_messages_arguments_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("streamdesk.test.pii")
    pii_filter = guardrails.PiiRedactingFilter()
    logger.addFilter(pii_filter)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("customer %s called from %s", "mei.davis@example.com", "+1 (555) 201-3344")
            try:
                raise ValueError("card 4111 1111 1111 1111 declined")
            except ValueError:
                logger.exception("payment failed for %s", "bob@example.com")
    finally:
        logger.removeFilter(pii_filter)
    text = caplog.text
    assert "[EMAIL]" in text and "[PHONE]" in text and "[CARD]" in text
    assert "example.com" not in text and "4111" not in text and "201-3344" not in text
