"""
The IMAP4rev1 server (RFC 3501) over the mailbox store, on ports 143
(STARTTLS) and 993 (implicit TLS).

Why not C{twisted.mail.imap4}: it is one 6,000-line module whose mailbox
interfaces (C{IMailbox.fetch} returning message objects, sequence numbers
owned by the mailbox) do not fit the shared L{cgpro.store.mailbox.Mailbox}
(one index per mailbox, per-session views of sequence numbers, listeners
for IDLE), it builds a message object per message per FETCH (slow for
100,000-message mailboxes) and it lacks UIDPLUS, MOVE, SPECIAL-USE, QUOTA
and ACL.  This package is a compact server of its own, split as the
house style asks:

  - L{cgpro.mail.imap.parser}: framing (lines, literals, LITERAL+,
    limits) and the grammar (tokens, sequence sets, FETCH attributes,
    SEARCH keys, dates, modified UTF-7); no server state.
  - L{cgpro.mail.imap.server}: the session (not authenticated,
    authenticated, selected), dispatch, untagged updates and IDLE.
  - L{cgpro.mail.imap.commands}: one module per command family (auth,
    mailbox, fetch, search, message, acl for ACL and QUOTA, qresync).
  - L{cgpro.mail.imap.mime} (parts as byte offsets) and
    L{cgpro.mail.imap.bodystructure} (ENVELOPE, BODY, BODYSTRUCTURE):
    reading messages for FETCH/SEARCH.
  - L{cgpro.mail.imap.errors}: refusals and their response codes.
  - L{cgpro.mail.imap.factory}: C{build(spec, context)} for the port table,
    and the IMAP module settings.

Extensions: LITERAL+, SASL-IR (AUTHENTICATE PLAIN), IDLE, UIDPLUS, MOVE,
UNSELECT, NAMESPACE, ID, ENABLE, CHILDREN, SPECIAL-USE, QUOTA, ACL with
RIGHTS=texk, CONDSTORE and QRESYNC; FETCH BINARY[] is understood too.
Shared mailboxes are C{~account/name}; mailbox aliases
(L{cgpro.store.commands.mailboxAliases}) resolve to their targets.
"""
