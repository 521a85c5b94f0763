"""Policy: who may call which tool with which arguments, and the approvals that gate high-risk writes."""
