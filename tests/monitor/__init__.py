"""
Tests for L{cgpro.monitor}.
"""
