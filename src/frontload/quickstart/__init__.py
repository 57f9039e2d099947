"""quickstart stage."""
