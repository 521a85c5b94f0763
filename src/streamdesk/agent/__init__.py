"""The tool-using ticket agent: LLM backends, constrained tool calls, the τ²-bench retail tools."""
