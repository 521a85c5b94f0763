"""What a τ²-bench user would write, turn by turn: the rules over the instruction text."""

from __future__ import annotations

from evals.dialogue import CONFIRMATION, customer_turns, first_person


def instructions(reason: str, known: str = "You are Ada Park in zipcode 10001.", **extra: str) -> dict[str, str]:
    return {"reason_for_call": reason, "known_info": known, "unknown_info": "You forgot your email.", **extra}


def test_the_simulator_is_rewritten_as_the_customer_speaking() -> None:
    assert first_person("You want to return your lamp that you received.") == (
        "I want to return my lamp that I received."
    )
    assert first_person("You name is Ada Park, and the agent should tell you the total.") == (
        "My name is Ada Park, and you should tell me the total."
    )
    assert first_person("Ask the agent explicitly to refund it and ask the agent how much you get back") == (
        "Please refund it and I would like to know how much I get back."
    )


def test_a_plain_request_is_opened_then_confirmed() -> None:
    turns, writes_after = customer_turns(instructions("You want to cancel order #W1 because it is no longer needed."))
    assert turns == [
        "I want to cancel order #W1 because it is no longer needed. I am Ada Park in zipcode 10001.",
        CONFIRMATION,
    ]
    assert writes_after == 2


def test_a_reaction_to_the_confirmation_request_comes_before_the_confirmation() -> None:
    turns, writes_after = customer_turns(
        instructions(
            "You want to exchange the bottle and the lamp. If the agent asks for confirmation, only exchange the lamp."
        )
    )
    assert turns[1:] == ["Only exchange the lamp.", CONFIRMATION] and writes_after == 3
    assert "confirmation" not in turns[0] and "agent" not in turns[0]


def test_a_withdrawal_is_never_followed_by_a_confirmation() -> None:
    turns, writes_after = customer_turns(
        instructions(
            "You want to cancel the grill, but if the agent asks you to confirm, you regret and want to keep it."
        )
    )
    assert turns[0].startswith("I want to cancel the grill.") and turns[1:] == ["I regret and want to keep it."]
    assert CONFIRMATION not in turns and writes_after == len(turns)


def test_answers_to_the_agents_questions_and_what_comes_after_the_change() -> None:
    turns, writes_after = customer_turns(
        instructions(
            "You want to return the purifier. When asked for order ID, provide 12345 first. "
            "If the agent asks you for which purifier, mention the small one. "
            "Once the agent has confirmed the return, you want to change your address back. "
            "If the agent says it is not possible, ask for a human.",
            task_instructions="You are brief. If asked for the reason, say you ordered it by mistake.",
        )
    )
    assert turns == [
        "I want to return the purifier. I am Ada Park in zipcode 10001.",
        "My order ID is 12345.",
        "The small one.",
        "I ordered it by mistake.",
        CONFIRMATION,
        "I want to change my address back.",
        CONFIRMATION,
    ]
    assert writes_after == 5


def test_what_the_simulator_keeps_back_is_not_said() -> None:
    turns, _ = customer_turns(
        instructions(
            "You want to return everything (except the mouse, but do not reveal it to the agent). "
            "The right item id is 555 (do not share this with the agent). Do NOT mention the items. "
            "Make sure you mention both things at once."
        )
    )
    assert turns[0] == "I want to return everything. I am Ada Park in zipcode 10001."


def test_an_opening_that_confirms_explicitly_may_write_at_once() -> None:
    turns, writes_after = customer_turns(instructions("Cancel order #W1; I confirm the cancellation."))
    assert writes_after == 1 and turns[-1] == CONFIRMATION


def test_a_human_agent_stays_one_and_a_preference_in_advice_is_kept() -> None:
    turns, _ = customer_turns(
        instructions(
            "You want to return the hose and exchange the boots. Make sure you mention both at once, and if the "
            "agent says they can only do one, you prefer to do the exchange. Otherwise you ask for a human agent."
        )
    )
    assert "If you can only do one, I prefer to do the exchange." in turns[0]
    assert "human agent" in turns[0] and "human you" not in turns[0]


def test_a_mistaken_detail_then_its_correction_are_two_replies() -> None:
    turns, _ = customer_turns(
        instructions(
            "You want to know your last order's total.",
            task_instructions="If asked for your zip code, say that it is 98178 first (common mistake), then "
            "correct yourself and say 98186 if an error is found.",
        )
    )
    assert turns[1:3] == ["My zip code is 98178.", "Sorry, it is 98186."]
    turns, _ = customer_turns(
        instructions(
            "You want to return the purifier.",
            task_instructions="If asked for the order id, say "
            "9502126; if asked again, you made a mistake and provide 9502127.",
        )
    )
    assert all("provide" not in turn for turn in turns[1:])
