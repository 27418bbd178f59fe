"""The per-message pipeline: named stages over one :class:`MessageContext`.

A pipeline is a tuple of stage names resolved from :data:`STAGES` (an explicit dict, no
module scanning). Stages run inside one database transaction per message; the processor
commits the outcome. ``Discard`` and ``Hold`` are stop signals, not errors: the message is
recorded as discarded (machine mail, duplicates) or quarantined (kept raw, with the reason,
for a human to re-process). Any other exception marks the message ``failed`` and the loop
goes on with the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from sqlmodel import Session

from mailer.config import Config
from mailer.ids import IdSigner
from mailer.ingest.mail import ParsedMail

if TYPE_CHECKING:
    from mailer.rules.classify import Classification
    from mailer.rules.engine import RuleSet

log = logging.getLogger(__name__)


class Discard(Exception):
    """Stop processing: the message is recorded but opens nothing (machine mail, duplicates).

    ``keep`` runs after the message's writes are rolled back, for the one fact a discarded
    mail still teaches us (a bounce: which address to stop mailing).
    """

    def __init__(self, reason: str, keep: Callable[[Session], None] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.keep = keep


class Hold(Exception):
    """Stop processing: quarantine the message with ``reason`` for a human."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class MessageContext:
    """What the stages know and decide about one inbound mail."""

    inbound_id: int
    raw: bytes
    mailbox: str
    message_id: str | None = None
    parsed: ParsedMail | None = None
    kind: str = "customer"
    ticket_id: int | None = None
    ticket_number: str | None = None
    outcome: str = "pending"
    notes: list[str] = field(default_factory=list)
    secrets: tuple[str, ...] = ()
    tags: list[str] = field(default_factory=list)
    raw_replacement: bytes | None = None
    classification: Classification | None = None

    @property
    def mail(self) -> ParsedMail:
        """The parsed mail; stages after ``parse`` may rely on it."""
        if self.parsed is None:
            raise RuntimeError("stage ordering: 'parse' must run first")
        return self.parsed


@dataclass(frozen=True, slots=True)
class Services:
    """What stages may use besides the message: config, signer, the open session."""

    config: Config
    signer: IdSigner
    session: Session
    rules: RuleSet


class Stage(Protocol):
    """One named step of the pipeline."""

    name: str

    def process(self, ctx: MessageContext, services: Services) -> None:
        """Look at or change ``ctx``; raise Discard or Hold to stop."""


StageFactory = Callable[[], Stage]
DEFAULT_PIPELINE = ("parse", "screen", "machine", "redact", "thread", "classify", "store",
                    "respond")


def stage_registry() -> Mapping[str, StageFactory]:
    """The explicit name -> stage table (imported lazily to keep this module light)."""
    from mailer.ingest import stages
    from mailer.outbound import respond
    from mailer.rules import stage as rules_stage

    return {
        "parse": stages.ParseStage,
        "screen": stages.ScreenStage,
        "machine": stages.MachineStage,
        "redact": rules_stage.RedactStage,
        "thread": stages.ThreadStage,
        "classify": rules_stage.ClassifyStage,
        "store": stages.StoreStage,
        "respond": respond.RespondStage,
    }


def build_pipeline(names: tuple[str, ...] = DEFAULT_PIPELINE) -> tuple[Stage, ...]:
    """Resolve stage names; an unknown name is a configuration error."""
    from mailer.errors import ConfigError

    registry = stage_registry()
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise ConfigError("pipeline", f"unknown stage(s): {', '.join(unknown)}")
    return tuple(registry[n]() for n in names)


def run_pipeline(stages: tuple[Stage, ...], ctx: MessageContext, services: Services) -> None:
    """Run every stage in order; stop signals propagate to the caller."""
    for stage in stages:
        log.debug("inbound=%s stage=%s", ctx.inbound_id, stage.name)
        stage.process(ctx, services)
