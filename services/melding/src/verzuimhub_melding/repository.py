"""Melding repository."""
