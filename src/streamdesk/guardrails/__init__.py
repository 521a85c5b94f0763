"""Guardrails: untrusted text is marked, injections refused, write arguments traced, PII kept out of logs."""
