"""Connectors: one module per source system, turning vendor payloads into canonical events.

They depend only on the contracts (`streamdesk.contracts`, the code form of `schemas/`) and the
small base class in `connectors.base`; nothing in the core imports a vendor's shape.
"""
