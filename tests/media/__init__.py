"""
Tests for L{cgpro.media}.
"""
