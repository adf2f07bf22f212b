"""Signoff: AI workflows that people sign off on."""

__version__ = "0.1.0"
