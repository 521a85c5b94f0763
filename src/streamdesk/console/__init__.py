"""The web console: review drafts, decide approvals, check the audit chain, watch models and ingest."""
