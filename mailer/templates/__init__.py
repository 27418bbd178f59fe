"""Outbound mail templates: Jinja2 files per language plus the sandboxed renderer.

Layout: ``<language>/<kind>.subject.j2``, ``<kind>.txt.j2`` and ``<kind>.html.j2``; a kind
missing in a language falls back to ``en/``. Shared macros live next to this file.
"""

from __future__ import annotations

from mailer.templates.render import KINDS, Rendered, Renderer

__all__ = ["KINDS", "Rendered", "Renderer"]
