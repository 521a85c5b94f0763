"""The learning loop's routing task: data splits, the tool-call format, metrics, regressions, SFT rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamdesk.agent import tools
from streamdesk.training import sft, tool_scorer
from streamdesk.training.tool_scorer import RoutedTicket


def ticket(tool: str, group: str = "g", n: int = 0) -> RoutedTicket:
    return RoutedTicket(id=f"t-{group}-{n}", source="test", text=f"ticket {n}", tool=tool, group=group)


def test_tool_call_is_the_agents_step_format() -> None:
    text = tool_scorer.tool_call("find_user_id_by_email", {"email": "a@b.c"})
    assert text == '{"tool": "find_user_id_by_email", "arguments": {"email": "a@b.c"}}'
    assert tool_scorer.called_tool(text) == "find_user_id_by_email"
    assert tool_scorer.called_tool('{"tool": "cancel_pending_order", "arguments": ') is None
    assert tool_scorer.called_tool("[1, 2]") is None


def test_candidates_are_the_step_grammars_tools() -> None:
    names = tool_scorer.candidate_tools()
    assert "reply" in names and "cancel_pending_order" in names and "find_user_id_by_name_zip" in names
    assert not set(names) & tools.TICKET_WRITES
    assert len(set(names)) == len(names)


@pytest.mark.parametrize(
    ("gold", "chosen", "accuracy", "by_group"),
    [
        (["a", "a", "b", "b"], ["a", "b", "b", "b"], 0.75, {"a": 0.5, "b": 1.0}),
        (["a", "b"], ["b", "a"], 0.0, {"a": 0.0, "b": 0.0}),
        ([], [], 0.0, {}),
    ],
)
def test_accuracy_overall_and_per_group(
    gold: list[str], chosen: list[str], accuracy: float, by_group: dict[str, float]
) -> None:
    tickets = [ticket(tool, group=tool, n=n) for n, tool in enumerate(gold)]
    assert tool_scorer.accuracy(tickets, chosen) == accuracy
    assert tool_scorer.accuracy_by_group(tickets, chosen) == by_group


def test_accuracy_refuses_mismatched_lengths() -> None:
    with pytest.raises(tool_scorer.RoutingDataError, match="1 tickets but 2 choices"):
        tool_scorer.accuracy([ticket("a")], ["a", "b"])


@pytest.mark.parametrize(
    ("candidate", "reference", "tolerance", "worse"),
    [
        ({"x": 0.9, "y": 0.5}, {"x": 0.8, "y": 0.5}, 0.0, []),
        ({"x": 0.7, "y": 0.5}, {"x": 0.8, "y": 0.5}, 0.0, ["x"]),
        ({"x": 0.7, "y": 0.4}, {"x": 0.8, "y": 0.5}, 0.0, ["x", "y"]),
        ({"x": 0.75}, {"x": 0.8}, 0.05, []),
        ({"x": 0.74}, {"x": 0.8}, 0.05, ["x"]),
        ({"x": 0.8 - 1e-12}, {"x": 0.8}, 0.0, []),
        ({}, {"x": 0.8}, 0.0, []),
    ],
)
def test_regressions(
    candidate: dict[str, float], reference: dict[str, float], tolerance: float, worse: list[str]
) -> None:
    assert tool_scorer.regressions(candidate=candidate, reference=reference, tolerance=tolerance) == worse


def test_bitext_split_is_disjoint_seeded_and_sized(shared_data: Path) -> None:
    split = tool_scorer.bitext_split(
        shared_data=shared_data, eval_per_intent=10, train_per_intent=12, feedback_per_intent=8, seed=7
    )
    assert (len(split.heldout), len(split.sft), len(split.feedback)) == (40, 48, 32)
    pools = [tool_scorer.unique_texts(pool) for pool in (split.heldout, split.sft, split.feedback)]
    assert sum(map(len, pools)) == len(set().union(*pools)) == 120
    assert {t.tool for t in split.heldout} == {tools[0] for tools in tool_scorer.bitext_tools().values()}
    assert all(t.arguments == {} and t.tool == tool_scorer.bitext_tools()[t.group][0] for t in split.sft)
    again = tool_scorer.bitext_split(
        shared_data=shared_data, eval_per_intent=10, train_per_intent=12, feedback_per_intent=8, seed=7
    )
    assert again == split
    other = tool_scorer.bitext_split(
        shared_data=shared_data, eval_per_intent=10, train_per_intent=12, feedback_per_intent=8, seed=8
    )
    assert other.heldout != split.heldout
    with pytest.raises(tool_scorer.RoutingDataError, match="lower --eval-per-intent"):
        tool_scorer.bitext_split(
            shared_data=shared_data, eval_per_intent=500, train_per_intent=1, feedback_per_intent=1, seed=7
        )


def test_taubench_first_actions(shared_data: Path) -> None:
    train = tool_scorer.taubench_first_actions(shared_data=shared_data, split="train")
    test = tool_scorer.taubench_first_actions(shared_data=shared_data, split="test")
    assert (len(train), len(test)) == (72, 40)
    assert len(tool_scorer.unique_texts(train) & tool_scorer.unique_texts(test)) <= 5  # near-twin tasks, cut alike
    first = test[0]
    assert first.tool == "find_user_id_by_name_zip" and first.arguments["zip"] == "28236"
    assert first.completion.startswith('{"tool": "find_user_id_by_name_zip", "arguments": {"first_name": "Mei"')
    assert all(len(t.text.split()) <= tool_scorer.REASON_WORDS + 60 for t in train + test)
    with pytest.raises(tool_scorer.RoutingDataError, match="split 'dev'"):
        tool_scorer.taubench_first_actions(shared_data=shared_data, split="dev")


def test_sft_rows_are_redacted_and_deduplicated() -> None:
    with_email = RoutedTicket(
        id="t1",
        source="test",
        text="Cancel my order. My email is mei.9@example-mail.com, card 4111 1111 1111 1111.",
        tool="find_user_id_by_email",
        arguments={"email": "mei.9@example-mail.com"},
    )
    rows = sft.sft_examples([with_email, with_email])
    assert len(rows) == 1
    assert "mei.9@example-mail.com" not in rows[0].prompt + rows[0].completion
    assert "4111" not in rows[0].prompt
    assert tool_scorer.called_tool(rows[0].completion) == "find_user_id_by_email"
    assert rows[0].to_trl()["completion"] == [{"role": "assistant", "content": rows[0].completion}]


def test_sft_order_and_digest_are_reproducible() -> None:
    rows = [sft.SFTExample(prompt=f"p{n}", completion=f"c{n}") for n in range(10)]
    assert sft.ordered(rows, seed=1) == sft.ordered(list(reversed(rows)), seed=1)
    assert sft.dataset_digest(sft.ordered(rows, seed=1)) != sft.dataset_digest(sft.ordered(rows, seed=2))


@pytest.mark.parametrize(("change", "word"), [({"batch_size": 0}, "batch_size"), ({"max_steps": 0}, "max_steps")])
def test_bad_sft_settings_are_refused(change: dict[str, object], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        sft.SFTTrainingConfig(**change)  # type: ignore[arg-type]


def test_the_router_tokenizes_names_as_the_training_text_does(model_dir: Path) -> None:
    from types import SimpleNamespace

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    router = tool_scorer.ToolScorer(SimpleNamespace(tokenizer=tokenizer))
    prompt = "Where is my order #W123? You are mei_kovacs_8020 in zipcode 28236."
    shared, rests = router._encode(prompt)
    assert set(rests) == set(tool_scorer.candidate_tools()) and all(rests.values())
    head = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )
    for name, rest in rests.items():
        full = tokenizer(head + tool_scorer.tool_call(name, {"order_id": "#W1"}), add_special_tokens=False)["input_ids"]
        assert list(full[: len(shared) + len(rest)]) == shared + rest, name
    firsts = {rest[0] for rest in rests.values()}
    assert len(firsts) > 1
