"""Tests for L{cgpro.sip}."""
