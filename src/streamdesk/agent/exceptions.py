"""Errors of the agent package."""

from streamdesk.exceptions import StreamdeskError


class AgentError(StreamdeskError):
    """Base of the agent package's errors."""


class ModelCacheError(AgentError):
    """The GGUF model could not be found or converted into the model cache."""


class UnknownDomainError(AgentError):
    """No domain pack goes by the configured name (`STREAMDESK_AGENT__DOMAIN`)."""


class BackendError(AgentError):
    """An LLM backend could not load its model or answer a request."""


class AnswerTimeoutError(AgentError):
    """An answer ran past its wall-clock budget (`STREAMDESK_ANSWER__ANSWER_TIMEOUT_S`); the ticket is escalated."""


class InputBudgetError(AgentError):
    """The prompt cannot fit the model's context even with the ticket cut to nothing."""


class AdapterNotFoundError(BackendError):
    """A LoRA adapter name does not resolve to an adapter folder."""


class GrammarError(AgentError):
    """A step schema cannot be built (no tool allowed, duplicate or unknown tool)."""


class StepParseError(AgentError):
    """Model output is not a valid agent step (JSON with `tool` and `arguments`)."""


class DuplicateToolError(AgentError):
    """Two tools were registered under one name."""


class ToolError(AgentError):
    """Base of the errors a tool call raises; the message is safe to show to the model."""


class UnknownToolError(ToolError):
    """No tool of that name is registered."""


class InvalidToolArgumentsError(ToolError):
    """Tool arguments do not match the tool's JSON Schema."""


class NotFoundError(ToolError):
    """The user, order, product or item a tool was asked for does not exist."""


class RuleViolationError(ToolError):
    """The call breaks a rule of the domain's policy (retail: order status, payment method, items, balance)."""


class CrossCustomerAccessError(ToolError):
    """The call touches a customer other than the one the conversation is about."""


class MissingTicketError(ToolError):
    """A ticket tool was called without a ticket in the tool context."""
