"""cgpro.core."""
