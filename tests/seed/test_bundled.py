"""The bundled copies are small, licensed, what their builders produce, and replace missing shared data."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from streamdesk.seed import knowledge, service, taubench, tickets
from streamdesk.seed.config import BUNDLED_DIR, TAU2_COMMIT


def test_bundled_files_are_small_and_named_in_the_notice() -> None:
    notice = (BUNDLED_DIR / "NOTICE").read_text()
    data = [p for p in BUNDLED_DIR.iterdir() if p.name != "NOTICE"]
    assert sum(p.stat().st_size for p in data) < 200_000
    assert TAU2_COMMIT in notice and "MIT License" in notice
    assert all(p.name in notice for p in data)


def test_bundled_files_equal_what_their_builders_make(shared_data: Path) -> None:
    assert taubench.load_world(path=taubench.BUNDLED_DB) == taubench.build_mini_world(shared_data=shared_data)
    corpus = knowledge.read_beir_corpus(shared_data / knowledge.BANKING_DIR / "corpus.jsonl")
    assert list(knowledge.read_beir_corpus(knowledge.BUNDLED_BANKING)) == knowledge.corpus_sample(corpus, every=14)
    assert knowledge.BUNDLED_POLICY.read_bytes() == (shared_data / knowledge.POLICY_FILE).read_bytes()


def test_replay_falls_back_to_the_bundled_copies(tmp_path: Path) -> None:
    what = ("taubench", "knowledge", "banking", "requesters", "tickets")
    records, sources = service.seed_records(shared_data=tmp_path, what=what)
    assert sources == {
        "taubench": str(taubench.BUNDLED_DB),
        "help": str(knowledge.HELP_CENTRE),
        "policy": str(knowledge.BUNDLED_POLICY),
        "banking": str(knowledge.BUNDLED_BANKING),
        "requesters": str(taubench.BUNDLED_DB),
        "tickets": str(taubench.BUNDLED_DB),
    }
    customers = [json.loads(r.value or b"")["after"] for r in records if r.topic == "raw.debezium.customers"]
    assert len(customers) == 8
    articles = [json.loads(r.value or b"") for r in records if r.topic == "raw.mapped"]
    tenants = Counter(article.get("tenant", "default") for article in articles)
    assert tenants == {"default": len(knowledge.help_articles()) + 7, knowledge.BANKING_TENANT: 50}
    comments = sum(len(template.follow_ups) for template in tickets.TEMPLATES)
    assert sum(r.topic == "raw.zendesk" for r in records) == 2 * len(tickets.TEMPLATES) + comments
