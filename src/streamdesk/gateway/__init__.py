"""The webhook gateway: signed pushes from SaaS systems land verbatim on their raw topics."""
