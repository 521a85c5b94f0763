"""Who acts: people with roles, and the agent's service identity acting for one verified customer."""
