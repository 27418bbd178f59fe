"""The rules stage. For now a no-op seam: the rules engine plugs in here."""

from __future__ import annotations

from mailer.pipeline import MessageContext, Services


class RulesStage:
    """Classify the ticket (category, urgency, tags). No rules yet: leaves fields unset."""

    name = "rules"

    def process(self, ctx: MessageContext, services: Services) -> None:
        """See `Stage`."""
