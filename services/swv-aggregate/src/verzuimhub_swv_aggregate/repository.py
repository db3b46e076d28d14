"""swv-aggregate repository."""
