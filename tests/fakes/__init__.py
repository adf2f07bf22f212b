"""Fakes of the outside world that speak the real protocols (SMTP, ...), for tests."""
