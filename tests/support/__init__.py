"""Helpers of the tests, one module per kind of thing (fixtures stay in the conftest.py files).

- ``accounts``: people and teams through the API: signup, join, invite, browser cookies.
- ``workflows``: workflows and runs through the API: draft, activate, wait for a run.
- ``pages``: the dashboard over ASGI as a browser: CSRF tokens, forms, sign in.
- ``browser``: Playwright against a real ``signoff serve``: page checks, screenshots.
- ``mailbox``: the emails the fake SMTP server received: wait for them, their text and links.
- ``outbox``: the outbox table: write a notice, read rows back, stop a sender.
- ``engine``: engine tests' scripted model, recording queue and ready-made run.
- ``processes``: real ``signoff serve``/``worker`` processes, and reading what they did.
- ``waiting``: wait for something with a deadline (never a fixed sleep).
- ``db``: count and read rows straight from the database.
- ``settings``, ``postgres``, ``ports``: test settings, the PostgreSQL server, free ports.
- ``smtp``, ``openai_fake``, ``fakeweb``: local stand-ins for an SMTP server, an
  OpenAI-compatible API and the web.
"""
