"""evaluate/tasks stage."""
