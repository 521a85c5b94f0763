"""Markup to plain text: HTML via selectolax, Contentful Rich Text by walking its nodes."""

from __future__ import annotations

import re
from typing import Any

from selectolax.lexbor import LexborHTMLParser, LexborNode

SKIPPED = frozenset({"script", "style", "noscript", "template", "head", "iframe", "svg", "object"})
BLOCKS = frozenset(
    {
        "p", "div", "section", "article", "aside", "header", "footer", "main", "nav", "blockquote",
        "pre", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "table", "figure", "figcaption",
        "hr", "form", "fieldset", "address", "details", "summary",
    }
)  # fmt: skip
LINES = frozenset({"br", "li", "dt", "dd", "tr", "caption"})
CELLS = frozenset({"td", "th"})
_PARA = "\x00P\x00"
_LINE = "\x00L\x00"
_SPACES = re.compile(r"\s+")
_BREAKS = re.compile(r"(?:\s*\x00[PL]\x00\s*)+")


def _pieces(root: LexborNode) -> list[str]:
    pieces: list[str] = []
    stack: list[LexborNode | str] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            pieces.append(item)
            continue
        tag = item.tag or ""
        if tag == "-text":
            pieces.append(_SPACES.sub(" ", item.text_content or ""))
            continue
        if tag in SKIPPED or tag.startswith("-"):
            continue
        mark = _PARA if tag in BLOCKS else _LINE if tag in LINES else " " if tag in CELLS else ""
        children = list(item.iter(include_text=True))
        stack.append(mark)
        stack.extend(reversed(children))
        stack.append(mark)
    return pieces


def _join(pieces: list[str]) -> str:
    text = "".join(pieces)

    def _break(match: re.Match[str]) -> str:
        return "\n\n" if _PARA in match.group(0) else "\n"

    lines = _BREAKS.sub(_break, text).split("\n")
    return "\n".join(_SPACES.sub(" ", line).strip() for line in lines).strip()


def html_to_text(html: str | None) -> str:
    """Readable plain text of an HTML fragment: no scripts/styles, paragraph breaks kept, entities decoded."""
    if not html or not html.strip():
        return ""
    tree = LexborHTMLParser(html)
    root = tree.body or tree.root
    if root is None:
        return ""
    return _join(_pieces(root))


RICH_BLOCKS = frozenset(
    {"document", "paragraph", "blockquote", "hr", "unordered-list", "ordered-list", "table"}
    | {f"heading-{level}" for level in range(1, 7)}
)
RICH_LINES = frozenset({"list-item", "table-row", "table-cell", "table-header-cell"})


def rich_text_to_text(node: Any) -> str:
    """Plain text of a Contentful Rich Text document (nodeType/content/value tree)."""
    pieces: list[str] = []
    stack: list[Any] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            pieces.append(item)
            continue
        if not isinstance(item, dict):
            continue
        kind = item.get("nodeType")
        kind = kind if isinstance(kind, str) else ""
        if kind == "text":
            pieces.append(_SPACES.sub(" ", str(item.get("value") or "")))
            continue
        mark = _PARA if kind in RICH_BLOCKS else _LINE if kind in RICH_LINES else ""
        content = item.get("content") or []
        stack.append(mark)
        stack.extend(reversed(content if isinstance(content, list) else []))
        stack.append(mark)
    return _join(pieces)
