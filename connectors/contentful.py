"""Contentful entry webhooks: publish upserts a document; unpublish, archive and delete remove it.

The action comes from the `X-Contentful-Topic` header (ContentManagement.Entry.<action>). Draft-side
actions (create, save, auto_save, unarchive) change no published content and yield no events.
"""

from __future__ import annotations

from typing import Any

from connectors.access import access_from_tags
from connectors.base import Connector, ConnectorError, RawMessage, decode_json
from connectors.guard import guarded
from connectors.text import rich_text_to_text
from connectors.times import from_epoch_ms, time_ms
from connectors.versions import to_int, version_tag
from connectors.wire import as_list, as_object, header
from streamdesk.contracts import Access, CanonicalEvent, DocumentEvent

TOPIC_HEADER = "x-contentful-topic"
UPSERT_ACTIONS = frozenset({"publish"})
DELETE_ACTIONS = frozenset({"unpublish", "delete", "archive"})
DRAFT_ACTIONS = frozenset({"create", "save", "auto_save", "unarchive"})
TITLE_FIELDS = ("title", "name", "heading", "question")
BODY_FIELDS = ("body", "content", "text", "answer", "description")


class ContentfulConnector(Connector):
    """Contentful Entry webhooks -> DocumentEvents, access from `access:<level>` and `group:<name>` tags."""

    family = "contentful"

    def __init__(
        self,
        *,
        locale: str = "en-US",
        url_template: str | None = None,
        default_access: Access | None = None,
        source: str | None = None,
        tenant: str = "default",
    ) -> None:
        super().__init__(source=source, tenant=tenant)
        self.locale = locale
        self.url_template = url_template
        self.default_access = default_access or Access(level="public")

    @guarded
    def parse(self, message: RawMessage) -> list[CanonicalEvent]:
        """A DocumentEvent for publish/unpublish/archive/delete; [] for draft-only actions."""
        body = decode_json(message.value)
        if not isinstance(body, dict) or not isinstance(body.get("sys"), dict):
            raise ConnectorError("Contentful webhook body must be a JSON object with a 'sys' object")
        sys = body["sys"]
        action = self._action(message, sys)
        if action in DRAFT_ACTIONS:
            return []
        entry_id = sys.get("id")
        if not isinstance(entry_id, str) or not entry_id:
            raise ConnectorError(f"Contentful {action} webhook has no sys.id")
        stamp = sys.get("updatedAt") or sys.get("deletedAt") or sys.get("publishedAt") or sys.get("createdAt")
        ms = time_ms(stamp, what=f"Contentful entry {entry_id} sys.updatedAt")
        version = [ms, to_int(sys.get("revision") or sys.get("publishedVersion") or 0, what="sys.revision")]
        op = "upsert" if action in UPSERT_ACTIONS else "delete"
        fields = as_object(body.get("fields"))
        content_type = as_object(as_object(sys.get("contentType")).get("sys")).get("id")
        tags = [
            str(as_object(tag.get("sys")).get("id") or "")
            for tag in as_list(as_object(body.get("metadata")).get("tags"))
            if isinstance(tag, dict)
        ]
        title, language = self._localized(fields, TITLE_FIELDS)
        text, body_language = self._localized(fields, BODY_FIELDS)
        slug, _ = self._localized(fields, ("slug",))
        space = as_object(as_object(sys.get("space")).get("sys")).get("id")
        environment = as_object(as_object(sys.get("environment")).get("sys")).get("id")
        return [
            DocumentEvent(
                event_id=f"contentful:{space or ''}:{entry_id}:{action}:{version_tag(version)}",
                source=self.source,
                external_id=entry_id,
                op=op,
                version=version,
                occurred_at=from_epoch_ms(ms),
                title=_as_text(title),
                body=_as_text(text) if op == "upsert" else "",
                url=self.url_template.format(slug=slug, id=entry_id) if self.url_template and slug else None,
                doc_type=str(content_type or "entry"),
                language=language or body_language,
                tenant=self.tenant,
                access=access_from_tags(tags, default=self.default_access),
                metadata={"space": space, "environment": environment, "tags": tags, "action": action},
            )
        ]

    def _action(self, message: RawMessage, sys: dict[str, Any]) -> str:
        topic = header(message, TOPIC_HEADER)
        if topic is None:
            if sys.get("type") == "DeletedEntry":
                return "delete"
            raise ConnectorError(
                f"Contentful webhook lacks the {TOPIC_HEADER!r} header; forward it from the webhook request"
            )
        parts = topic.split(".")
        if len(parts) != 3 or parts[0] != "ContentManagement" or parts[1] != "Entry":
            raise ConnectorError(f"unsupported Contentful topic {topic!r}; expected ContentManagement.Entry.<action>")
        action = parts[2]
        if action not in UPSERT_ACTIONS | DELETE_ACTIONS | DRAFT_ACTIONS:
            raise ConnectorError(
                f"unknown Contentful entry action {action!r} in {topic!r}; expected one of "
                f"{', '.join(sorted(UPSERT_ACTIONS | DELETE_ACTIONS | DRAFT_ACTIONS))}"
            )
        return action

    def _localized(self, fields: dict[str, Any], names: tuple[str, ...]) -> tuple[Any, str | None]:
        """The first present field among `names`, in the configured locale (else the first locale)."""
        for name in names:
            values = fields.get(name)
            if isinstance(values, dict) and values:
                if self.locale in values:
                    return values[self.locale], self.locale
                locale, value = next(iter(values.items()))
                return value, str(locale)
        return None, None


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict) and value.get("nodeType") == "document":
        return rich_text_to_text(value)
    if isinstance(value, str):
        return value.strip()
    raise ConnectorError(f"Contentful field value of type {type(value).__name__} is not text or a Rich Text document")
