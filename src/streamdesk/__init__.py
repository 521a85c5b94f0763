"""streamdesk: enterprise events in, grounded answers out, better answers over time."""

__version__ = "0.1.0"
