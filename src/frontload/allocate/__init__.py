"""allocate stage."""
