"""What a τ²-bench user would write, turn by turn: a task's instructions as the messages of one ticket.

τ²-bench simulates the customer with instructions written to the simulator ("You want to cancel the grill,
but if the agent asks you to confirm, you regret and want to keep it."). `customer_turns` reads them with
general rules over the text, never per task:

- the *opening* message is the reason for call and the known info (as in the single-message case; what the
  user does not know, "You do not remember your email address", says nothing the agent can use), in the first
  person, without
  what the simulator is told to keep back (a "do not reveal/share/mention" sentence or aside), meta advice on
  how to talk ("Make sure you mention ...", "Be polite ..."), and clauses about how to react to the agent;
- a clause about the agent *asking* ("If the agent asks for confirmation, only exchange the desk lamp", "When
  asked for the order id, ...") becomes a later message saying the consequence ("Only exchange the desk lamp.");
- a clause about what the agent *cannot do* ("If the agent says gift card is not possible, ...") is the
  simulator's fallback for an outcome a fixed thread cannot know: it is left out;
- the τ² user confirms a change the agent lists, so a plain confirmation ("Yes, I confirm.") follows the
  replies to the agent's questions — unless the last of them withdraws the change ("you regret and want to
  keep it"); a clause about what happens once a change is done ("Once the agent has confirmed the changes,
  ...") comes after that confirmation, confirmed in turn when it asks for another change.

`writes_after_turn` is the 1-based turn whose answer may first write: the confirmation's, or 1 when the
opening message itself confirms explicitly ("I confirm"); with no confirmation at all, the last turn.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from streamdesk.agent.grounding import split_sentences

CONFIRMATION = "Yes, I confirm."
_AGENT = r"(?:the\s+)?(?:customer\s+service\s+)?agent"
_REACTION = re.compile(
    rf"(?:^|,?\s*\b(?:but|and|then)\s+)\b(?P<clause>(?:if|when|once|after|whenever)\s+(?:(?:for\s+(?:\w+\s+){{1,3}})?"
    rf"{_AGENT}\b|asked\b|the\s+\w+\s+is\s+complete)[^,]*),\s*(?P<then>.*)$",
    re.IGNORECASE,
)
_ASKS = re.compile(r"\b(?:asks?|asked)\b", re.IGNORECASE)
_CONFIRMING = re.compile(r"\bconfirm(?:s|ation)?\b", re.IGNORECASE)
_DONE = re.compile(r"\b(?:once|after)\b|\bhas\s+(?:been\s+)?(?:confirmed|completed|done)\b", re.IGNORECASE)
_KEPT_BACK = re.compile(
    r"\b(?:do\s+not|don'?t|not|won'?t)\s+(?:want\s+to\s+)?(?:reveal|share|mention)\b|\bprefer\s+not\s+to\s+reveal\b",
    re.IGNORECASE,
)
_ASIDE = re.compile(r"\s*\(([^()]*)\)")
_META = re.compile(
    r"^(?:make\s+sure\s+(?:you\s+|to\s+)?(?:briefly\s+)?mention|mention|try\s+to|be|as\s+you\s+are)\b", re.IGNORECASE
)
_SPOKEN_LATER = re.compile(r"^(?:if|when)\b[^,]*,\s*(?:then\s+)?(?:say|mention|tell)\b", re.IGNORECASE)
_ASKED_FOR = re.compile(
    r"\bask(?:s|ed)?\s+(?:you\s+)?for\s+(?:the\s+|your\s+|an?\s+)?(?!which\b)(?P<what>[\w\s-]+)$", re.I
)
_WITHDRAWS = re.compile(
    r"\b(?:regret|keep\s+it|never\s+mind|not\s+(?:to\s+)?(?:do|proceed|cancel)|don'?t\s+(?:do|proceed|cancel))\b",
    re.IGNORECASE,
)
_ASKS_CHANGE = re.compile(
    r"\b(?:cancel|return|exchange|modify|change|switch|replace|upgrade)\b(?!\s+(?:my|your)\s+mind)", re.IGNORECASE
)
_EXPLICIT_CONFIRMATION = re.compile(r"\bI\s+(?:hereby\s+)?confirm\b", re.IGNORECASE)
_BECAUSE = re.compile(r"\bbecause\s+(?P<reason>.+)$", re.IGNORECASE)
_SPEECH = re.compile(
    r"^(?:then\s+)?(?:(?:you|I)\s+)?(?:just\s+)?(?:say|mention|tell\s+(?:them|it|him|her|the\s+agent)|provide)"
    r"(?:\s+that)?\s+",
    re.IGNORECASE,
)
_CORRECTED = re.compile(
    r"^(?:(?:say|provide|tell)\s+)?(?:that\s+)?(?:it\s+is\s+)?(?P<first>[\w#-]+)\s+first\b[^,]*,\s*then\s+correct\s+\w+"
    r"(?:\s+and\s+(?:say|provide))?\s+(?P<then>[\w#-]+)",
    re.IGNORECASE,
)
_PREFERS = re.compile(r"\bprefer", re.IGNORECASE)
_SAYS_VALUE = re.compile(r",?\s+and\s+(?:then\s+)?(?:say|provide|mention|give)\s+(?:that\s+)?", re.IGNORECASE)
"""'I made a mistake and provide 9502127': what the customer says after the words about it."""
_NOTHING = re.compile(r"^[\s.]*(?:none)?[\s.]*$", re.IGNORECASE)
# First-person rewriting: the simulator is addressed as "you", the agent as "the agent".
_PERSON = (
    (r"\byou\s+are\b", "I am"),
    (r"\byou\s+were\b", "I was"),
    (r"\byou'?re\b", "I'm"),
    (r"\byou'd\b", "I'd"),
    (r"\byou'll\b", "I'll"),
    (r"\byou'?ve\b", "I've"),
    (r"\byourself\b", "myself"),
    (r"\byours\b", "mine"),
    (r"\byou(?:r)?\s+name\b", "my name"),
    (r"\byour\b", "my"),
)
_OBJECT_BEFORE = re.compile(
    r"\b(?:to|for|with|at|from|by|about|of|on|into|than|tells?|told|helps?|gives?|sends?|asks?|asked|let|lets|show|"
    r"shows|thank|offered|contact|call|owes?)\s+$",
    re.IGNORECASE,
)
_TO_AGENT = (
    (rf"\b(?:I\s+)?(?:ask|tell)\s+{_AGENT}\s+(?:explicitly\s+)?not\s+to\b", "please do not"),
    (rf"\b(?:I\s+)?(?:ask|tell)\s+{_AGENT}\s+(?:explicitly\s+)?to\b", "please"),
    (
        rf"\b(?:I\s+)?(?:ask|tell)\s+{_AGENT}\s+(?:explicitly\s+)?(?=(?:how|what|whether|if|which|why|when|where|about)\b)",
        "I would like to know ",
    ),
    (rf"\bI\s+want\s+{_AGENT}\s+to\b", "I want you to"),
    (rf"\b{_AGENT}\s+(?:says?|tells?\s+(?:me|I))\s+(?:that\s+)?(?:they|it|he|she)\s+", "you "),
    (rf"(?<!human\s)(?<!live\s)(?<!real\s)\b{_AGENT}\b", "you"),  # "a human agent" stays one
)


def first_person(text: str) -> str:
    """`text` written to the τ² simulator ("You want to return your lamp") as the customer says it ("I want ...").

    "you" becomes "me" after a preposition or a verb that takes a person ("tell you") and "I" elsewhere; the
    agent becomes "you".
    """
    for pattern, replacement in _PERSON:
        text = re.sub(pattern, functools.partial(_cased_match, replacement), text, flags=re.IGNORECASE)
    text = re.sub(
        r"\byou\b",
        lambda m: _cased("me" if _OBJECT_BEFORE.search(m.string[: m.start()]) else "I", m.group(0)),
        text,
        flags=re.IGNORECASE,
    )
    for pattern, replacement in _TO_AGENT:
        text = re.sub(pattern, replacement, text, flags=re.IGNORECASE)
    return _sentence(text)


def _cased_match(replacement: str, match: re.Match[str]) -> str:
    return _cased(replacement, match.group(0))


def _cased(replacement: str, original: str) -> str:
    return replacement[0].upper() + replacement[1:] if original[0].isupper() else replacement


def _sentence(text: str) -> str:
    text = " ".join(text.split()).strip(" ,;").lstrip(".")
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?)" else text + "."


def _said(consequence: str, *, asked: str) -> str:
    """What the customer says to the agent's question `asked`: the consequence of the clause, in their own words.

    A bare value ("provide 9502126 first" when asked for the order ID) is said as "My order ID is 9502126.".
    """
    because = _BECAUSE.search(consequence)
    if because and re.search(r"\bnot\s+say\s+yes\b", consequence, re.IGNORECASE):
        consequence = because.group("reason")
    spoken = _SPEECH.sub("", re.sub(r"^then\s+", "", consequence.strip(), flags=re.IGNORECASE))
    spoken = _SAYS_VALUE.sub(": ", spoken)
    value = re.sub(r"\s+(?:first|initially)$", "", spoken.strip(" ."), flags=re.IGNORECASE)
    wanted = _ASKED_FOR.search(asked)
    if wanted and not re.match(r"(?:I|it|my|you|that|this)\b", value, re.IGNORECASE) and len(value.split()) <= 3:
        return first_person(f"your {wanted.group('what').strip()} is {value}")
    return first_person(spoken)


def _without_kept_back(sentence: str) -> str:
    """`sentence` without what the simulator keeps back: a "do not reveal" aside, or all of it."""
    for aside in _ASIDE.finditer(sentence):
        if _KEPT_BACK.search(aside.group(1)):
            if re.match(r"\s*(?:do\s+not|don'?t)\b", aside.group(1), re.IGNORECASE):
                return ""  # "(do not share this with the agent)": the sentence is the secret
            sentence = sentence.replace(aside.group(0), "")
    return "" if _KEPT_BACK.search(sentence) else sentence


def _clauses(text: str) -> list[tuple[str, str, str]]:
    """The sentences of `text` as `(kind, said, clause)`: kind `opening`, `reply` (to the agent's question) or `after`.

    Sentences the simulator keeps back, meta advice and fallbacks for outcomes are left out.
    """
    found: list[tuple[str, str, str]] = []
    for sentence in split_sentences(text):
        sentence = _without_kept_back(sentence)
        if not sentence:
            continue
        meta = bool(_META.match(sentence))  # advice on how to talk, but a preference in it still counts
        for piece in re.split(r",?\s*\b(?:but|then)\s+(?=(?:if|when|once|after)\b)", sentence, flags=re.IGNORECASE):
            reaction = _REACTION.search(piece)
            if reaction is None:
                if not meta and not _SPOKEN_LATER.match(piece):  # "If that doesn't work, say ...": a fallback
                    found.append(("opening", piece, ""))
                continue
            before, clause = piece[: reaction.start()].strip(" ,"), reaction.group("clause")
            if meta:
                if _PREFERS.search(reaction.group("then")) and not (_DONE.search(clause) or _ASKS.search(clause)):
                    found.append(("opening", f"{clause}, {reaction.group('then')}", ""))
                continue
            if before:
                found.append(("opening", before, ""))
            said = _said(reaction.group("then"), asked=clause)
            if _DONE.search(clause):
                found.append(("after", said, clause))
            elif _ASKS.search(clause) or _CONFIRMING.search(clause):
                corrected = _CORRECTED.match(reaction.group("then"))
                if corrected:  # "98178 first (common mistake), then correct yourself and say 98186": two replies
                    found.append(("reply", _said(corrected.group("first"), asked=clause), clause))
                    said = first_person(f"sorry, it is {corrected.group('then')}")
                found.append(("reply", said, clause))
            elif _PREFERS.search(reaction.group("then")):  # "if the agent says only one is possible, you prefer X"
                found.append(("opening", f"{clause}, {reaction.group('then')}", ""))
    return found


def customer_turns(instructions: dict[str, Any]) -> tuple[list[str], int]:
    """The messages of the τ² user of `instructions`, in order, and the 1-based turn whose answer may first write.

    The reason for call gives the opening and the reactions; the task instructions (the simulator's persona)
    give only reactions ("If asked for the reason, say you ordered by mistake.").
    """
    read = _clauses(str(instructions.get("reason_for_call") or ""))
    read += [item for item in _clauses(str(instructions.get("task_instructions") or "")) if item[0] != "opening"]
    opening = [said for kind, said, _ in read if kind == "opening"]
    opening.append(str(instructions.get("known_info") or ""))
    first = " ".join(first_person(piece) for piece in opening if not _NOTHING.match(piece))
    replies = [said for kind, said, _ in read if kind == "reply" and said]
    turns = [first, *replies]
    confirms = not (replies and _WITHDRAWS.search(replies[-1]))
    if confirms:
        turns.append(CONFIRMATION)
    for said in (said for kind, said, _ in read if kind == "after" and said):
        turns.append(said)
        if confirms and _ASKS_CHANGE.search(said):
            turns.append(CONFIRMATION)
    if _EXPLICIT_CONFIRMATION.search(first):
        return turns, 1
    return turns, turns.index(CONFIRMATION) + 1 if confirms else len(turns)
