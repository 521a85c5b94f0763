"""Feedback: signals on the agent's answers, the label policy that turns them into KTO examples, data hygiene."""
