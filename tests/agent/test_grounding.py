"""Grounded words with the service's real sentence embedder: extractive answers, declines, the grounding check."""

from __future__ import annotations

import pytest

from streamdesk.agent import grounding
from streamdesk.agent.grounding import Part, Passage
from streamdesk.knowledge.embedders import get_embedder

GIFT = Passage(
    chunk_id="kb:gift-wrap#0",
    title="Gift wrapping",
    text=(
        "We offer gift wrapping for every order placed on the web site. Gift wrapping costs five dollars per item. "
        "Choose it at checkout, before you pay. Wrapped items ship one day later than unwrapped ones."
    ),
)
HOURS = Passage(
    chunk_id="kb:hours#0",
    title="Opening hours",
    text="Our stores open at nine in the morning. They close at six in the evening on weekdays.",
)
SECRET = Passage(
    chunk_id="kb:margins#0",
    title="Internal: gift wrapping margins",
    text="Gift wrapping costs us one dollar per item, so it earns four dollars per item.",
    access_level="internal",
)


def test_sentences_questions_and_containment() -> None:
    assert grounding.split_sentences("One thing. Two things? 3 things!\n\nFour") == [
        "One thing.",
        "Two things?",
        "3 things!",
        "Four",
    ]
    assert grounding.question_of("Hello there.\nHow much is gift wrapping? Thanks.") == "How much is gift wrapping?"
    assert grounding.question_of("what is the return window") == "what is the return window"
    assert grounding.question_of("Please cancel my order.") is None
    assert grounding.containment("Gift wrapping costs five dollars", GIFT.text) == 1.0
    assert grounding.containment("Gift wrapping is free for everyone", GIFT.text) < grounding.GROUNDED_CONTAINMENT


def test_an_answer_quotes_the_best_public_passage_and_cites_it() -> None:
    answer = grounding.answer_question("How much does gift wrapping cost?", [HOURS, GIFT], embedder=get_embedder())
    assert answer.answerable and answer.citations == [GIFT.chunk_id]
    assert "Gift wrapping costs five dollars per item." in answer.text
    assert all(part.text in GIFT.text and part.origin == "knowledge" for part in answer.parts)
    assert set(answer.features) == set(grounding.FEATURES)


def test_the_next_passage_and_the_title_are_features_of_the_decision() -> None:
    alone = grounding.answer_question("How much does gift wrapping cost?", [GIFT], embedder=get_embedder())
    both = grounding.answer_question("How much does gift wrapping cost?", [HOURS, GIFT], embedder=get_embedder())
    assert alone.features["other_sentence_cosine"] == 0.0 < both.features["other_sentence_cosine"]
    assert both.features["other_sentence_cosine"] < both.features["sentence_cosine"]
    assert both.features["title_coverage"] == pytest.approx(2 / 3)  # gift, wrapping (not cost) in the title


def test_the_residual_cosine_takes_the_title_out() -> None:
    asked = grounding.answer_question("How much does gift wrapping cost?", [GIFT], embedder=get_embedder())
    on_topic = grounding.answer_question("Who invented gift wrapping paper?", [GIFT], embedder=get_embedder())
    untitled = Passage(chunk_id="kb:untitled#0", title="", text=GIFT.text)
    plain = grounding.answer_question("How much does gift wrapping cost?", [untitled], embedder=get_embedder())
    assert asked.features["residual_cosine"] < asked.features["sentence_cosine"]
    assert on_topic.features["residual_cosine"] < asked.features["residual_cosine"]
    assert plain.features["residual_cosine"] == pytest.approx(plain.features["sentence_cosine"])


def test_a_question_the_passages_do_not_answer_is_declined() -> None:
    answer = grounding.answer_question(
        "What is the warranty on a lawn mower engine?", [HOURS, GIFT], embedder=get_embedder()
    )
    assert not answer.answerable and answer.text == grounding.DECLINE and answer.citations == []


def test_a_non_public_passage_is_never_quoted() -> None:
    answer = grounding.answer_question("How much do we earn on gift wrapping?", [SECRET], embedder=get_embedder())
    assert not answer.answerable and answer.citations == [] and "dollar" not in answer.text
    mixed = grounding.answer_question("How much does gift wrapping cost?", [SECRET, GIFT], embedder=get_embedder())
    assert SECRET.chunk_id not in mixed.citations and SECRET.text not in mixed.text


@pytest.mark.parametrize(
    ("parts", "rate"),
    [
        ([Part("Thank you. Here is what we found.", "template"), Part("Order 1 is pending.", "fact")], 1.0),
        ([Part("Gift wrapping costs five dollars per item.", "knowledge", GIFT.chunk_id)], 1.0),
        ([Part("Gift wrapping is free on Sundays.", "knowledge", GIFT.chunk_id)], 0.0),
        ([Part("Gift wrapping costs five dollars per item. It is great fun!", "model")], 0.5),
        ([Part("Gift wrapping costs us one dollar per item.", "model")], 0.0),
    ],
)
def test_the_grounding_check(parts: list[Part], rate: float) -> None:
    cited = [*parts, Part("", "knowledge", GIFT.chunk_id)]
    assert grounding.grounded_sentence_rate(cited, passages=[GIFT, SECRET]) == rate


def test_a_chunk_cut_mid_sentence_is_never_quoted() -> None:
    from streamdesk.agent.grounding import _quoted

    sentences = ["Refunds reach a gift card at once.", "Other methods take 5 to 7 days.", "When you change the"]
    assert _quoted(sentences, ranking=[2, 1, 0]) == sentences[:2]
