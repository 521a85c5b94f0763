"""WordPress REST API v2 posts, pages and revisions (one object, a collection, or a DELETE response).

Published posts get the connector's default access; private, draft, pending and future ones are internal,
password-protected ones restricted, trashed or deleted ones are deleted. A revision (an object with a
`parent` and no `type`) updates its parent document; autosaves are skipped because they are unsaved drafts.
Revisions carry no status, so they get the default access.
"""

from __future__ import annotations

import re
from typing import Any

from connectors.base import Connector, ConnectorError, RawMessage, decode_json
from connectors.guard import guarded
from connectors.text import html_to_text
from connectors.times import epoch_ms, from_epoch_ms, parse_iso
from connectors.versions import to_int, version_tag
from connectors.wire import as_object
from streamdesk.contracts import Access, CanonicalEvent, DocumentEvent

INTERNAL_STATUSES = frozenset({"private", "draft", "pending", "future", "inherit"})
_PARENT_TYPE = re.compile(r"/wp/v2/(posts|pages)/\d+")


def _rendered(value: Any) -> str:
    """HTML of a `{rendered: ...}` field (or a plain string) as text."""
    if isinstance(value, dict):
        value = value.get("rendered")
    return html_to_text(value) if isinstance(value, str) else ""


class WordPressConnector(Connector):
    """WP REST API objects -> DocumentEvents; revisions update their parent, trash deletes."""

    family = "wordpress"

    def __init__(
        self, *, default_access: Access | None = None, source: str | None = None, tenant: str = "default"
    ) -> None:
        super().__init__(source=source, tenant=tenant)
        self.default_access = default_access or Access(level="public")

    @guarded
    def parse(self, message: RawMessage) -> list[CanonicalEvent]:
        """One DocumentEvent per post, page or revision; [] for autosaves (unsaved drafts)."""
        body = decode_json(message.value)
        items = body if isinstance(body, list) else [body]
        events: list[CanonicalEvent] = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise ConnectorError(f"WordPress object #{index} must be a JSON object, got {type(item).__name__}")
            event = self._object(item)
            if event is not None:
                events.append(event)
        return events

    def _object(self, item: dict[str, Any]) -> DocumentEvent | None:
        if item.get("deleted") is True and isinstance(item.get("previous"), dict):
            return self._document(item["previous"], deleted=True)
        if "type" not in item and isinstance(item.get("parent"), int) and item["parent"] > 0:
            if "-autosave-" in str(item.get("slug") or ""):
                return None
            return self._document(item, revision=True)
        return self._document(item)

    def _document(self, item: dict[str, Any], *, revision: bool = False, deleted: bool = False) -> DocumentEvent:
        if item.get("id") in (None, ""):
            raise ConnectorError("WordPress object has no id; send REST API v2 post/page objects")
        object_id = to_int(item["id"], what="WordPress id")
        modified = item.get("modified_gmt")
        if not isinstance(modified, str) or not modified:
            raise ConnectorError(
                f"WordPress object {object_id} has no modified_gmt; request it with context=view or edit"
            )
        moment = parse_iso(modified, what=f"WordPress {object_id} modified_gmt")
        version = [epoch_ms(moment), object_id]
        external_id = str(to_int(item["parent"], what="revision parent")) if revision else str(object_id)
        status = str(item.get("status") or "")
        op = "delete" if deleted or status == "trash" else "upsert"
        content = as_object(item.get("content"))
        access = self.default_access
        if status in INTERNAL_STATUSES:
            access = Access(level="internal")
        if content.get("protected") is True:
            access = Access(level="restricted")
        excerpt = _rendered(item.get("excerpt"))
        doc_type = str(item.get("type") or "")
        if revision:
            links = as_object(item.get("_links")).get("parent") or []
            hrefs = " ".join(str(as_object(link).get("href") or "") for link in links if isinstance(links, list))
            match = _PARENT_TYPE.search(hrefs)
            doc_type = match.group(1).rstrip("s") if match else "post"
        metadata: dict[str, Any] = {
            key: item[key] for key in ("slug", "status", "author", "categories", "tags", "date_gmt") if key in item
        }
        metadata["excerpt"] = excerpt
        if revision:
            metadata["revision_id"] = object_id
        return DocumentEvent(
            event_id=f"wordpress:{external_id}:{op}:{version_tag(version)}",
            source=self.source,
            external_id=external_id,
            op=op,
            version=version,
            occurred_at=from_epoch_ms(version[0]),
            title=_rendered(item.get("title")),
            body=_rendered(content) or excerpt if op == "upsert" else "",
            url=item.get("link") if isinstance(item.get("link"), str) else None,
            doc_type=doc_type or "post",
            tenant=self.tenant,
            access=access,
            metadata=metadata,
        )
