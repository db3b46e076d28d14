"""Melding schemas."""
