"""The family registry agrees with schemas/topics.yaml."""

from __future__ import annotations

import pytest

from connectors import registry
from connectors.base import Connector, ConnectorError
from streamdesk import topics


def test_every_raw_topic_family_has_a_connector_and_vice_versa() -> None:
    families = {spec.family for spec in topics.raw_topics()}
    assert families == set(registry.FAMILIES)


@pytest.mark.parametrize("family", registry.FAMILIES)
def test_connectors_are_cached_and_know_their_family(family: str) -> None:
    connector = registry.connector_for(family)
    assert isinstance(connector, Connector)
    assert connector.family == family
    assert registry.connector_for(family) is connector


def test_every_raw_schema_exists_and_is_valid() -> None:
    from streamdesk import contracts

    for spec in topics.raw_topics():
        assert contracts.validator_for(spec.schema) is not None


def test_unknown_family_is_an_error_naming_the_known_ones() -> None:
    with pytest.raises(ConnectorError, match=r"no connector for family 'sap'.*debezium"):
        registry.connector_for("sap")
