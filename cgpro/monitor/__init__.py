"""
Monitoring front ends: they read the server's figures from the one catalog
(L{cgpro.core.stats}) and publish them (the SNMP agent, and the other
exporters).
"""
