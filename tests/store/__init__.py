"""Tests for cgpro.store."""
