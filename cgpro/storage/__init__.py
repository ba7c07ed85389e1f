"""cgpro.storage."""
