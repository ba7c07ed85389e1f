"""
Tests for L{cgpro.pbx}: environments, their CLI commands, call detail
records, the Chronos scheduler and the PSTN rules.
"""
