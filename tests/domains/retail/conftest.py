"""The retail pack's tests share the agent tests' fixtures: τ²-bench rows in the real database."""

from tests.agent.conftest import conn, load_world, retail_tasks, retail_world, test_split

__all__ = ["conn", "load_world", "retail_tasks", "retail_world", "test_split"]
