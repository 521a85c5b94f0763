"""The tool-using ticket agent, domain-free: LLM backends, constrained tool calls, the domain pack it receives."""
