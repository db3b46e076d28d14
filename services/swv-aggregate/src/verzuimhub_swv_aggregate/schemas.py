"""swv-aggregate schemas."""
