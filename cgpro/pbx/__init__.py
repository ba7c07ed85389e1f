"""
Real-Time applications (the PBX): the data layer they stand on.

CommuniGate's Real-Time Application module runs programs that take part in
calls as a B2BUA (the stock C{pbx}, C{voicemail}, C{gatewaycaller},
C{rsipRegister} ... of C{spec/pbx-apps.md}).  This package holds what those
programs read and write besides the calls themselves:

  - L{cgpro.pbx.environment}: the stock, server-wide and per-Domain file
    environments (programs, prompts, billing plans) and their lookup order;
  - L{cgpro.pbx.envcommands}: the CLI commands that manage them (cli.md 6.7);
  - L{cgpro.pbx.cdr}: durable call detail records and C{GETCDRS};
  - L{cgpro.pbx.chronos}: the scheduler that starts timed tasks (RSIP
    registrations);
  - L{cgpro.pbx.pstn}: the pure rules of the PSTN applications (settings
    resolution, billing plans, area codes, emergency targets, RSIP timing).
"""
