"""The HTTP API: application factory, health and readiness, and every domain's routes."""
