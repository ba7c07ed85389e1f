"""Tests of the IMAP server (L{cgpro.mail.imap})."""
