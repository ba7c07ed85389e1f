"""cgpro.directory."""
