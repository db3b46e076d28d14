"""Ingest schemas."""
