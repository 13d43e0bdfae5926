"""Command-line entry points; each catches bad input at the boundary and exits cleanly."""
