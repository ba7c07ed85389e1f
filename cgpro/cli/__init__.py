"""cgpro.cli."""
