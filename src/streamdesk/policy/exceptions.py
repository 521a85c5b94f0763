"""Errors of the policy package."""

from streamdesk.exceptions import StreamdeskError


class PolicyError(StreamdeskError):
    """Base of the policy package's errors."""


class InvalidRulesError(PolicyError):
    """The rules file names an unknown role, tool group or kind, or is not valid YAML."""


class ApprovalError(PolicyError):
    """Base of the refusals of the approval workflow."""


class ActionNotFoundError(ApprovalError):
    """No pending action has this id."""


class NotAnApproverError(ApprovalError):
    """The principal holds neither supervisor nor admin, or belongs to another tenant."""


class SelfApprovalError(ApprovalError):
    """The approver proposed the action themselves; another supervisor must decide."""


class ActionAlreadyDecidedError(ApprovalError):
    """The action was approved, rejected or executed already."""


class IdempotencyConflictError(ApprovalError):
    """An idempotency key was reused for a different tool call."""
