"""Fixtures of the evaluation tests: the agent tests' τ²-bench world, database connection and real backend."""

from tests.agent.conftest import backend, conn, load_world, retail_world, test_split

__all__ = ["backend", "conn", "load_world", "retail_world", "test_split"]
