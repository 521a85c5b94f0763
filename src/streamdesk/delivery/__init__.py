"""Replies back to the helpdesk: answers that may go out, delivered once each to the ticket's source."""
