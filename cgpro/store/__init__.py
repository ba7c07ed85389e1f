"""
cgpro.store: the accounts' mailboxes, in Maildir++ folders with a UID journal.

  - L{cgpro.store.maildir}: L{MailStore<cgpro.store.maildir.MailStore>},
    the L{cgpro.core.interfaces.IMailStore} local delivery uses, and the
    account-level API of the IMAP and POP3 servers (open, list, create,
    rename, delete, copy, move, subscriptions, ACLs, quota); the on-disk
    layout is described there.
  - L{cgpro.store.mailbox}: the shared open L{Mailbox<cgpro.store.mailbox.Mailbox>}
    (messages, flags, expunge, MODSEQ, listeners for IDLE).
  - L{cgpro.store.journal}: the per-mailbox UID journal format and its
    loader (crash recovery).
  - L{cgpro.store.index}: the compact in-memory index.
  - L{cgpro.store.names}: mailbox-name escaping, flags, Maildir file names.
"""
