"""Mail protocol modules: SMTP, submission, LMTP (and later POP3, IMAP)."""
