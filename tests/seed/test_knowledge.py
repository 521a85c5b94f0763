"""Knowledge articles: the retail help centre (public), the retail policy by section (internal), the banking
corpus in its own tenant with access levels, BEIR folders."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from streamdesk.seed import knowledge
from streamdesk.seed.exceptions import SeedError


def test_the_policy_is_one_internal_article_per_section(shared_data: Path) -> None:
    articles = knowledge.policy_articles(path=shared_data / knowledge.POLICY_FILE)
    assert [a["title"] for a in articles] == [
        "Retail agent policy",
        "Domain basic",
        "Generic action rules",
        "Cancel pending order",
        "Modify pending order",
        "Return delivered order",
        "Exchange delivered order",
    ]
    assert {a["access"] for a in articles} == {"internal"}  # agent-facing: never cited to a customer
    assert all("tenant" not in a for a in articles)  # the retail desk's tenant, `default`
    assert "### Modify payment" in articles[4]["text"]
    assert articles[3]["id"] == "tau2-retail-policy-cancel-pending-order"
    assert articles[3]["url"].endswith("/retail/policy.md#cancel-pending-order")


HELP_TOPICS = {
    "cancel": "Cancelling an order",
    "refund timing": "How long refunds take",
    "return": "Returning items of a delivered order",
    "exchange": "Exchanging items of a delivered order",
    "change items": "Changing the items of a pending order",
    "address and payment of an order": "Changing the shipping address or payment of a pending order",
    "account": "Your account, default address and payment methods",
    "identity": "Verifying who you are",
    "order status": "Order status and tracking",
    "a person": "Talking to a person",
}


def test_the_help_centre_is_one_public_retail_article_per_topic() -> None:
    articles = knowledge.help_articles()
    titles = [a["title"] for a in articles]
    assert set(HELP_TOPICS.values()) <= set(titles)
    assert len(set(titles)) == len(titles) and all(a["text"] for a in articles)
    assert {a["access"] for a in articles} == {"public"}
    assert all(a["id"] == f"retail-help-{knowledge.slugify(a['title'])}" and "tenant" not in a for a in articles)
    by_title = {a["title"]: a["text"] for a in articles}
    assert "5 to 7 business days" in by_title["How long refunds take"]
    assert "immediately" in by_title["How long refunds take"]
    assert all(len(a["text"].split()) < 150 for a in articles)  # one chunk each: retrieval finds the passage
    assert not any("_" in a["text"] for a in articles)  # written for customers: no tool or field names


def test_banking_access_is_deterministic_and_mixed(shared_data: Path) -> None:
    path = shared_data / knowledge.BANKING_DIR / "corpus.jsonl"
    articles = list(knowledge.banking_articles(path=path))
    assert articles == list(knowledge.banking_articles(path=path))
    assert {a.get("tenant") for a in articles} == {knowledge.BANKING_TENANT}
    levels = Counter(a["access"] for a in articles)
    assert len(articles) == 698
    assert 0.07 < levels["restricted"] / 698 < 0.13
    assert 0.16 < levels["internal"] / 698 < 0.25
    assert all(a["groups"] in (["billing"], ["fraud"]) for a in articles if a["access"] == "restricted")
    assert all(a["groups"] == [] for a in articles if a["access"] != "restricted")
    assert {tuple(a["groups"]) for a in articles} == {(), ("billing",), ("fraud",)}
    assert all(a["access"] != "public" for a in articles if a["title"].startswith("Internal:"))


def test_any_beir_folder_becomes_articles(shared_data: Path) -> None:
    folder = shared_data / "retrieval" / "clapnq_dev"
    articles = list(knowledge.beir_articles(corpus_dir=folder, id_prefix="clapnq:", limit=5))
    first = json.loads((folder / "corpus.jsonl").read_text().splitlines()[0])
    assert len(articles) == 5
    assert articles[0]["id"] == f"clapnq:{first['_id']}"
    assert articles[0]["text"] == first["text"].strip()
    assert articles[0]["access"] == "public"


def test_blank_documents_are_skipped_and_bad_lines_named(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text('{"_id": "1", "title": "t", "text": " "}\n{"_id": "2", "text": "x"}\n')
    assert [a["id"] for a in knowledge.beir_articles(corpus_dir=tmp_path)] == ["2"]
    (tmp_path / "corpus.jsonl").write_text('{"_id": "1", "text": "x"}\n{"title": "no id"}\n')
    with pytest.raises(SeedError, match=r"corpus.jsonl:2 lacks `_id`"):
        list(knowledge.beir_articles(corpus_dir=tmp_path))
    with pytest.raises(SeedError, match="not found"):
        list(knowledge.beir_articles(corpus_dir=tmp_path / "missing"))
