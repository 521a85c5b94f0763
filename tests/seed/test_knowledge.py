"""Knowledge articles: the retail policy by section, the banking corpus with access levels, BEIR folders."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from streamdesk.seed import knowledge
from streamdesk.seed.exceptions import SeedError


def test_the_policy_is_one_public_article_per_section(shared_data: Path) -> None:
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
    assert {a["access"] for a in articles} == {"public"}
    assert "### Modify payment" in articles[4]["text"]
    assert articles[3]["id"] == "tau2-retail-policy-cancel-pending-order"
    assert articles[3]["url"].endswith("/retail/policy.md#cancel-pending-order")


def test_banking_access_is_deterministic_and_mixed(shared_data: Path) -> None:
    path = shared_data / knowledge.BANKING_DIR / "corpus.jsonl"
    articles = list(knowledge.banking_articles(path=path))
    assert articles == list(knowledge.banking_articles(path=path))
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
