"""The retail pack's tests share the agent tests' fixtures: τ²-bench rows in the real database, the real model."""

from tests.agent.conftest import backend, conn, load_world, retail_tasks, retail_world, test_split, world

__all__ = ["backend", "conn", "load_world", "retail_tasks", "retail_world", "test_split", "world"]
