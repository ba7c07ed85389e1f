"""
POP3 (RFC 1939) with CAPA, RESP-CODES, PIPELINING (RFC 2449), SASL AUTH
(RFC 5034) and STLS (RFC 2595): the server side, over the mailbox store.
"""
