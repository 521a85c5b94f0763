"""The connector of each raw-topic family (the `family` field in schemas/topics.yaml)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from connectors.base import Connector
from connectors.contentful import ContentfulConnector
from connectors.debezium import DebeziumConnector
from connectors.exceptions import UnknownFamily
from connectors.hubspot import HubSpotConnector
from connectors.mapped import MappedConnector
from connectors.salesforce import SalesforceConnector
from connectors.stripe import StripeConnector
from connectors.wordpress import WordPressConnector
from connectors.zendesk import ZendeskConnector

FACTORIES: dict[str, Callable[[], Connector]] = {
    DebeziumConnector.family: DebeziumConnector,
    SalesforceConnector.family: SalesforceConnector,
    HubSpotConnector.family: HubSpotConnector,
    ZendeskConnector.family: ZendeskConnector,
    WordPressConnector.family: WordPressConnector,
    ContentfulConnector.family: ContentfulConnector,
    StripeConnector.family: StripeConnector,
    MappedConnector.family: MappedConnector,
}
FAMILIES: tuple[str, ...] = tuple(FACTORIES)


@cache
def connector_for(family: str) -> Connector:
    """The (cached) connector instance for raw-topic `family`."""
    factory = FACTORIES.get(family)
    if factory is None:
        raise UnknownFamily(f"no connector for family {family!r}; known families: {', '.join(FAMILIES)}")
    return factory()
