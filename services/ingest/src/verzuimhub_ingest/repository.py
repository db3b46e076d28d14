"""Ingest repository."""
