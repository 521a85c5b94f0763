"""Plausible, seeded rows for the change generator: customers, orders, order items, products, articles."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from streamdesk.seed.wire import AccessLevel, KbArticle

_FIRST = ("Ava", "Noah", "Mia", "Liam", "Yusuf", "Sofia", "Omar", "Chen", "Isabella", "Raj", "Lena", "Mei")
_LAST = ("Brown", "Rossi", "Garcia", "Kim", "Nguyen", "Patel", "Silva", "Muller", "Khan", "Lopez", "Ito")
_CITIES = (("Denver", "CO", "80279"), ("Austin", "TX", "78701"), ("Seattle", "WA", "98101"), ("Boston", "MA", "02108"))
_STATUSES = ("pending", "processed", "delivered", "cancelled")
_PRODUCTS = ("T-Shirt", "Water Bottle", "Office Chair", "Desk Lamp", "Backpack", "Headphones", "Sneakers")
_COLORS = ("black", "blue", "red", "green", "white")
_SIZES = ("S", "M", "L", "XL")
_WORDS = (
    "account",
    "refund",
    "order",
    "shipping",
    "policy",
    "customer",
    "payment",
    "card",
    "return",
    "exchange",
    "item",
    "days",
    "business",
    "balance",
    "transfer",
    "fee",
    "limit",
    "verify",
    "identity",
    "request",
    "approve",
    "deny",
    "escalate",
    "agent",
    "ticket",
    "status",
    "pending",
    "delivered",
    "cancel",
    "gift",
    "original",
    "method",
    "statement",
    "dispute",
    "review",
    "within",
    "must",
    "may",
    "only",
    "before",
    "after",
    "each",
    "every",
    "support",
    "warranty",
    "receipt",
    "address",
    "billing",
    "invoice",
    "credit",
    "debit",
    "charge",
)


class SyntheticRows:
    """Makes new rows and changed copies of rows from one random generator, so streams replay exactly."""

    def __init__(self, rng: random.Random, *, doc_words: int, reference: Callable[[str], str]) -> None:
        self.rng = rng
        self.doc_words = doc_words
        self.reference = reference  # a live key of another table, for foreign keys

    def new_row(self, table: str, key: str, *, updated_at: str) -> dict[str, Any]:
        """A fresh row of `table` with primary key `key`."""
        rng = self.rng
        if table == "customers":
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            card = f"credit_card_{rng.randrange(10**6, 10**7)}"
            return {
                "id": key,
                "first_name": first,
                "last_name": last,
                "email": f"{first}.{last}{rng.randrange(1000, 9999)}@example.com".lower(),
                "address": self._address(),
                "payment_methods": {
                    card: {"source": "credit_card", "id": card, "last_four": f"{rng.randrange(10**4):04d}"}
                },
            }
        if table == "orders":
            customer = self.reference("customers")
            total = round(rng.uniform(10, 900), 2)
            return {
                "id": key,
                "user_id": customer,
                "customer_id": customer,
                "status": "pending",
                "address": self._address(),
                "fulfillments": [],
                "payment_history": [
                    {"transaction_type": "payment", "amount": total, "payment_method_id": "gift_card_0000001"}
                ],
                "total": total,
            }
        if table == "order_items":
            return {
                "id": key,
                "order_id": self.reference("orders"),
                "line": 1,
                "item_id": str(rng.randrange(10**9, 10**10)),
                "product_id": str(rng.randrange(10**9, 10**10)),
                "name": rng.choice(_PRODUCTS),
                "price": round(rng.uniform(5, 500), 2),
                "options": {"color": rng.choice(_COLORS), "size": rng.choice(_SIZES)},
            }
        if table == "products":
            variants = {}
            for _ in range(rng.randint(1, 3)):
                item_id = str(rng.randrange(10**9, 10**10))
                variants[item_id] = {
                    "item_id": item_id,
                    "options": {"color": rng.choice(_COLORS), "size": rng.choice(_SIZES)},
                    "available": rng.random() < 0.8,
                    "price": round(rng.uniform(5, 500), 2),
                }
            return {"id": key, "name": rng.choice(_PRODUCTS), "variants": variants}
        level, groups = self._access()
        article: KbArticle = {
            "id": key,
            "title": self._title(),
            "text": self._text(),
            "access": level,
            "groups": groups,
            "updated_at": updated_at,
        }
        return dict(article)

    def changed_row(self, table: str, before: dict[str, Any], *, updated_at: str) -> dict[str, Any]:
        """A copy of `before` with a few columns changed; articles keep their text about half the time."""
        rng = self.rng
        row = dict(before)  # every branch replaces what it changes, so a shallow copy suffices
        if table == "customers":
            if rng.random() < 0.5:
                row["email"] = f"{row['first_name']}.{row['last_name']}{rng.randrange(1000, 9999)}@example.com".lower()
            else:
                row["address"] = self._address()
        elif table == "orders":
            row["status"] = rng.choice(_STATUSES)
            if rng.random() < 0.3:
                row["fulfillments"] = [{"tracking_id": [str(rng.randrange(10**11, 10**12))], "item_ids": []}]
        elif table == "order_items":
            row["price"] = round(rng.uniform(5, 500), 2)
        elif table == "products":
            item_id = rng.choice(sorted(row["variants"]))
            variant = dict(row["variants"][item_id])
            row["variants"] = {**row["variants"], item_id: variant}
            variant["price"] = round(rng.uniform(5, 500), 2)
            variant["available"] = not variant["available"]
        else:
            kind = rng.random()
            if kind < 0.5:
                row["text"] = self._text()
                if rng.random() < 0.3:
                    row["title"] = self._title()
            elif kind < 0.75:
                row["access"], row["groups"] = self._access()
            row["updated_at"] = updated_at
        return row

    def _address(self) -> dict[str, str]:
        city, state, zip_code = self.rng.choice(_CITIES)
        street = f"{self.rng.randrange(1, 999)} {self.rng.choice(('Oak', 'Pine', 'River', 'Sunset'))} Street"
        return {"address1": street, "address2": "", "city": city, "country": "USA", "state": state, "zip": zip_code}

    def _access(self) -> tuple[AccessLevel, list[str]]:
        roll = self.rng.random()
        if roll < 0.1:
            return "restricted", [self.rng.choice(("billing", "fraud"))]
        return ("internal", []) if roll < 0.3 else ("public", [])

    def _title(self) -> str:
        return " ".join(self.rng.choices(_WORDS, k=self.rng.randint(3, 6))).capitalize()

    def _text(self) -> str:
        words = self.rng.choices(_WORDS, k=self.doc_words)
        sentences = [" ".join(words[i : i + 12]).capitalize() + "." for i in range(0, len(words), 12)]
        return " ".join(sentences)
