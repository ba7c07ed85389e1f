"""SMTP, ESMTP, submission and LMTP: the server side (receiving) and the relay client (sending)."""
