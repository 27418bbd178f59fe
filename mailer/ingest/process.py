"""Process stage runner: every ``received`` inbound row goes through the pipeline.

One transaction per message (Mailman's loop): the pipeline's writes and the row's new
status commit together, so a crash leaves the row ``received`` and it is simply processed
again. A stop signal or an exception rolls the pipeline's writes back and records only the
outcome on the row; the loop then goes on with the next message.
"""

from __future__ import annotations

import logging
import traceback
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from mailer.config import Config
from mailer.ids import IdSigner
from mailer.models import Inbound, utcnow
from mailer.pipeline import Discard, Hold, MessageContext, Services, Stage, run_pipeline
from mailer.rules.engine import RuleSet

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one inbound row."""

    inbound_id: int
    status: str
    reason: str | None
    ticket_number: str | None
    outcome: str


def pending_ids(engine: Engine, limit: int | None = None) -> list[int]:
    """Ids of inbound rows waiting to be processed, oldest first."""
    with Session(engine) as session:
        stmt = select(Inbound.id).where(Inbound.status == "received").order_by(col(Inbound.id))
        return [i for i in session.exec(stmt.limit(limit)) if i is not None]


@dataclass(frozen=True, slots=True)
class Runner:
    """What processing needs besides the row: engine, config, signer, rules, stages."""

    engine: Engine
    config: Config
    signer: IdSigner
    rules: RuleSet
    stages: tuple[Stage, ...]


def process_pending(runner: Runner, limit: int | None = None) -> Counter[str]:
    """Process every pending row; returns a count per outcome."""
    counts: Counter[str] = Counter()
    for inbound_id in pending_ids(runner.engine, limit):
        result = process_one(runner, inbound_id)
        counts[result.outcome if result.status == "processed" else result.status] += 1
    return counts


def process_one(runner: Runner, inbound_id: int) -> Outcome:
    """Run the pipeline for one row and commit its outcome."""
    with Session(runner.engine, expire_on_commit=False) as session:
        row = session.get(Inbound, inbound_id)
        if row is None or row.raw is None:
            raise LookupError(f"inbound {inbound_id} has no stored mail")
        ctx = MessageContext(inbound_id, row.raw, row.mailbox)
        services = Services(runner.config, runner.signer, session, runner.rules)
        status, reason, detail = _run(ctx, services, runner.stages)
        row = session.get(Inbound, inbound_id)
        assert row is not None
        row.status, row.reason, row.detail = status, reason, detail
        if ctx.raw_replacement is not None:
            row.raw = ctx.raw_replacement
        row.ticket_id = ctx.ticket_id if status == "processed" else None
        row.attempts += 1
        row.processed_at = utcnow()
        session.add(row)
        session.commit()
    outcome = Outcome(inbound_id, status, reason, ctx.ticket_number, ctx.outcome)
    _log(ctx, outcome)
    return outcome


def _run(ctx: MessageContext, services: Services,
         stages: tuple[Stage, ...]) -> tuple[str, str | None, str | None]:
    try:
        run_pipeline(stages, ctx, services)
    except Discard as stop:
        services.session.rollback()
        return "discarded", stop.reason, None
    except Hold as stop:
        services.session.rollback()
        return "quarantined", stop.reason, stop.detail or None
    except Exception as exc:  # one bad mail never blocks the others
        services.session.rollback()
        log.exception("inbound=%s failed in the pipeline", ctx.inbound_id)
        return "failed", type(exc).__name__, traceback.format_exc(limit=20)
    return "processed", None, None


def _log(ctx: MessageContext, outcome: Outcome) -> None:
    msgid = ctx.parsed.message_id if ctx.parsed else "?"
    log.info("inbound=%s msgid=%s ticket=%s status=%s outcome=%s reason=%s",
             outcome.inbound_id, msgid, outcome.ticket_number or "-", outcome.status,
             outcome.outcome, outcome.reason or "-")
