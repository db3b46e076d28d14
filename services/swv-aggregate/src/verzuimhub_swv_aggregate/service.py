"""swv-aggregate service."""
