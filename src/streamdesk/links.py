"""Which URLs from ingested content may become links: absolute http(s) and mailto, nothing else."""

from __future__ import annotations

from urllib.parse import urlsplit

LINK_SCHEMES = frozenset({"http", "https", "mailto"})


def safe_link(url: str | None) -> str | None:
    """`url` when it is an absolute http(s) URL with a host or a mailto address, else None.

    Documents come from outside (a WordPress post, a Contentful entry), so a `javascript:`, `data:` or
    `vbscript:` URL, a relative or protocol-relative one, or one hiding control characters, whitespace or
    quotes (which browsers strip or split on) never becomes an `href`.
    """
    if not url or any(ord(char) <= 0x20 or char in "\x7f\"'<>\\" for char in url):
        return None
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in LINK_SCHEMES:
        return None
    if scheme == "mailto":
        return url if "@" in parts.path else None
    return url if parts.hostname else None
