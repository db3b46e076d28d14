"""Fixtures for every test directory live in verzuimhub.testing."""

pytest_plugins = ["verzuimhub.testing"]
