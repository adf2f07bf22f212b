"""The mail tests' fixtures: the fake SMTP server (redundant, and harmless, once the root
conftest registers ``tests.fakes.smtp`` as a plugin)."""

from tests.fakes.smtp import smtp_server  # noqa: F401
