"""The root of every error streamdesk raises on purpose."""


class StreamdeskError(Exception):
    """Base class: catch this to catch every deliberate streamdesk failure."""


class ConfigurationError(StreamdeskError):
    """A setting is missing, malformed or unsafe for the current environment."""


class ContractError(StreamdeskError):
    """A payload does not match the JSON Schema of its topic."""


class RuntimeStartError(StreamdeskError):
    """An embedded service (broker, database) could not be started or reached."""
