"""The guardrails' rule tables: PII shapes and prompt-injection patterns, as data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

DESK_TOOL_NAMES = ("search_knowledge", "update_ticket", "escalate", "refund")
"""The core's own tool names; the domain pack adds its tools' names (`injection_rules`)."""

EMAIL = re.compile(r"(?<![\w.+%-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b", re.IGNORECASE)
CARD = re.compile(r"(?<![\w#.,/+-])\d(?:[ -]?\d){12,18}(?![\w/])")
PHONES = (
    re.compile(r"(?<![\w+#])\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){1,5}(?![\w])"),
    re.compile(r"(?<![\w#/.-])(?:1[ .-])?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w])"),
    re.compile(r"(?<![\w#/.-])0\d{1,4}(?:[ .-]\d{2,4}){2,4}(?![\w/])"),
)
PHONE_DIGITS = (9, 15)
"""Digit counts a phone number may have; shorter or longer runs are left alone."""

ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
TAG_CHARACTERS = re.compile("[\U000e0000-\U000e007f]")
BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{%d,}={0,2}(?![A-Za-z0-9+/=])")
DELIMITER_LOOKALIKES = (
    (re.compile(r"<{3,}|>{3,}|«{2,}|»{2,}"), lambda m: "~" * len(m.group(0))),
    (re.compile(r"<\|([^|>]{0,40})\|>"), lambda m: f"<¦{m.group(1)}¦>"),
    (re.compile(r"\[/?(?:INST|SYS|SYSTEM)\]", re.IGNORECASE), lambda m: m.group(0).replace("[", "(").replace("]", ")")),
)
"""Sequences that could close our untrusted block or open a chat turn, and their harmless stand-ins."""


@dataclass(frozen=True)
class InjectionRule:
    """One named pattern of prompt injection, matched on normalised (NFKC, lower-cased) text."""

    name: str
    category: str
    pattern: re.Pattern[str]


def _rule(name: str, category: str, pattern: str) -> InjectionRule:
    return InjectionRule(name, category, re.compile(pattern, re.IGNORECASE | re.MULTILINE | re.DOTALL))


_W = r"[^.!?\n]"
_RULES_BEFORE_TOOLS: tuple[InjectionRule, ...] = (
    _rule(
        "ignore_instructions",
        "instruction_override",
        rf"\b(ignore|disregard|forget|override|overrule|bypass|abandon|drop)\b{_W}{{0,40}}?"
        rf"\b(previous|prior|above|earlier|preceding|all|any|your|the|system|original|initial)\b{_W}{{0,30}}?"
        r"\b(instructions?|prompts?|rules|directives?|guidelines|polic(y|ies)|constraints|programming|guardrails)\b",
    ),
    _rule("forget_everything", "instruction_override", r"\bforget (everything|all)( (you|that|above|before))"),
    _rule(
        "new_instructions",
        "instruction_override",
        r"\b(new|updated|real|actual|revised|hidden|secret)\s+(system\s+)?(instructions?|directives?|prompt)\s*:",
    ),
    _rule(
        "system_prompt",
        "system_prompt",
        rf"\b(system\s*(prompt|message|override|instructions?)s?\b|(reveal|print|show|repeat|output|leak|tell me)"
        rf"\b{_W}{{0,30}}\b(your|hidden|initial|original|secret)\s+(instructions|prompt|configuration)"
        r"|(repeat|print|output)\s+(the|all|everything)\s+(text|words|content|above))",
    ),
    _rule(
        "addressed_to_model",
        "instruction_override",
        r"\b(note|message|instructions?) (to|for) (the )?(ai|assistant|bot|chatbot|model|llm|agent)\b",
    ),
    _rule(
        "chat_markup",
        "system_prompt",
        r"<\|?\s*(im_start|im_end|system|endoftext|assistant)\s*\|?>|\[/?(inst|sys|system)\]|###\s*(system|instruction)"
        r"|<\s*/?\s*(system|instructions?)\s*>|^\s*(system|assistant)\s*:\s*(you|ignore|new|from now|the assistant)",
    ),
    _rule(
        "you_are_now",
        "role_play",
        rf"\byou are now\b{_W}{{0,30}}?\b(ai|assistant|bot|model|gpt|llm|admin\w*|root|dan|developer|system"
        r"|unrestricted|unfiltered|jailbroken|evil|in \w+ mode)\b",
    ),
    _rule(
        "pretend_role",
        "role_play",
        rf"\b(pretend|imagine|act|behave|roleplay|role-play)\b{_W}{{0,20}}\b(to be|you are|as|like)\b{_W}{{0,25}}"
        r"\b(admin\w*|supervisor|developer|system|root|unrestricted|jailbroken|dan"
        r"|(a )?different (ai|assistant|model)|another (ai|assistant|model)"
        r"|(an? )?(ai|assistant|model) (with|without) no|no (rules|restrictions|limits))\b",
    ),
    _rule(
        "special_mode",
        "role_play",
        r"\b(jailbreak|dan|god|unrestricted|unfiltered)\s+mode\b"
        r"|\b(you|assistant|ai|bot|model)\b.{0,30}\b(developer|debug|sudo|admin)\s+mode\b",
    ),
    _rule(
        "from_now_on", "role_play", r"\bfrom now on,? you (are|will be|will act|must act|must obey|will obey|have no)\b"
    ),
    _rule(
        "claimed_authority",
        "privilege_claim",
        rf"\b(as|i am|i'm|this is)\s+(an?|the|your)\s+(admin\w*|system administrator|developer|superuser|root user"
        rf"|supervisor|system|openai|anthropic)\b{_W}{{0,80}}\b(authori[sz]e|authori[sz]ing|order you|instruct|command"
        r"|approve|grant|override|bypass|ignore|disable|unlock|tell you to|require you)",
    ),
    _rule(
        "privileged_command",
        "privilege_claim",
        r"\b(admin|administrator|supervisor|developer|root)\s+(override|privileges?|command)\b",
    ),
    _rule(
        "bypass_control",
        "privilege_claim",
        rf"\b(bypass|skip|disable|turn off|circumvent|get around|override)\b{_W}{{0,20}}?\b(the |any |your )?"
        r"(approval|verification|authentication|safety|guardrails?|security checks?|rbac|content filter"
        r"|refund limits?|amount limits?)\b",
    ),
    _rule(
        "claimed_approval",
        "privilege_claim",
        r"\b((already|pre)[- ]?(approved|authori[sz]ed)|(approved|authori[sz]ed))\s+by\s+(your|the|a|an)\s+"
        r"(supervisor|admin\w*|management|security team|system)\b",
    ),
)
_RULES_AFTER_TOOLS: tuple[InjectionRule, ...] = (
    _rule(
        "tool_call_markup",
        "tool_smuggling",
        r"<\s*/?\s*(tool_call|function_call|tool_use|invoke)\b|<\|tool|\[tool_call\]",
    ),
    _rule(
        "hidden_comment",
        "hidden_instruction",
        r"<!--(?:(?!-->).){0,300}?\b(ignore|instruction|assistant|\bai\b|model|system|you must|you are|refund|approve"
        r"|tool|prompt|admin)|\[//\]:\s*#|\[comment\]:\s*<>",
    ),
    _rule(
        "hidden_style",
        "hidden_instruction",
        r"(display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(px)?\b|color\s*:\s*(white|#fff(fff)?)\b)"
        r"[^>]*>[^<]{0,300}?\b(ignore|instruction|assistant|you must|refund|approve|system|prompt)",
    ),
    _rule(
        "exfiltration_link",
        "exfiltration",
        r"!\[[^\]]*\]\(https?://[^)\s]*\?[^)\s]*(\{|%7b|data=|q=|secret|token|prompt)",
    ),
)


@lru_cache(maxsize=8)
def injection_rules(tool_names: tuple[str, ...]) -> tuple[InjectionRule, ...]:
    """The built-in rules, strongest signal first (the first that matches names the finding).

    `tool_names` are the agent's tools: a customer has no reason to write the snake_case ones, nor a
    tool call naming any of them.
    """
    snake_tools = "|".join(name for name in tool_names if "_" in name)
    all_tools = "|".join(tool_names)
    tool_rules = (
        _rule("tool_name_mention", "tool_smuggling", rf"\b({snake_tools})\b"),
        _rule(
            "tool_call_json",
            "tool_smuggling",
            r"[{,]\s*[\"'](tool|tool_name|function|function_call|tool_calls|action|name)[\"']\s*:\s*[\"']?"
            rf"({all_tools})\b|[\"']arguments[\"']\s*:\s*\{{",
        ),
    )
    return (*_RULES_BEFORE_TOOLS, *tool_rules, *_RULES_AFTER_TOOLS)
