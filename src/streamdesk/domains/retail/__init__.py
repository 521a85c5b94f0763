"""τ²-bench retail as a domain pack: tools, intent rules, policy, renderers, approvals and RBAC (`pack.PACK`)."""
