"""
The IMAP commands, one module per family; each is a mixin of
L{cgpro.mail.imap.server.IMAPServer} whose methods C{cmd_<NAME>} take the
parsed arguments and return C{None} or a L{Deferred}.
"""
