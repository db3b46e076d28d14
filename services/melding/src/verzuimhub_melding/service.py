"""Melding service."""
