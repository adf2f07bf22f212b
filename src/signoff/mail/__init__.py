"""Email: the transactional outbox, its templates, and the sender that delivers it.

Every email is a row in ``mail_outbox`` first, written by :func:`signoff.mail.service.enqueue`
inside the transaction of the state change that causes it, so an email exists exactly when
that change committed (docs/engine.md, invariant 7). :class:`signoff.mail.sender.MailSender`
delivers due rows over SMTP with retries, or, in development without SMTP, keeps them for the
dev mailbox and logs their links.
"""
