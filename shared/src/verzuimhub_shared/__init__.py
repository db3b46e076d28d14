"""Verzuimhub's own library: plumbing every service shares, and no service's domain rules."""
