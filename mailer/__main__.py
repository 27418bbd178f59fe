"""Allow ``python -m mailer``."""

from __future__ import annotations

from mailer.cli import main

raise SystemExit(main())
