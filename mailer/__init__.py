"""mailer: an email-ticketing pipeline daemon for a crypto exchange support desk."""

from __future__ import annotations

__version__ = "0.1.0"
