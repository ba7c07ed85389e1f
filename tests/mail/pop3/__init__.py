"""Tests of the POP3 server (cgpro.mail.pop3)."""
