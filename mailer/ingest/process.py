"""Process stage runner: every ``received`` inbound row goes through the pipeline.

Mailman's one-message-at-a-time loop, with the database as the queue: each message runs
inside its own SAVEPOINT, so its writes and its row's new status are kept or dropped
together; a stop signal or an exception rolls back that message alone, records the outcome
on the row, and the loop goes on. Messages are committed in batches of :data:`BATCH` (a
commit per message cost more than the pipeline itself); a crash before the commit leaves
the batch's rows ``received`` and they are simply processed again.
"""

from __future__ import annotations

import logging
import traceback
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, bindparam, select, update
from sqlmodel import Session, col
from sqlmodel import select as orm_select

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


def pending_ids(engine: Engine, limit: int | None = None,
                mailbox: str | None = None) -> list[int]:
    """Ids of inbound rows waiting to be processed (of one mailbox), oldest first."""
    with Session(engine) as session:
        stmt = orm_select(Inbound.id).where(Inbound.status == "received").order_by(
            col(Inbound.id))
        if mailbox is not None:
            stmt = stmt.where(Inbound.mailbox == mailbox)
        return [i for i in session.exec(stmt.limit(limit)) if i is not None]


@dataclass(frozen=True, slots=True)
class Runner:
    """What processing needs besides the row: engine, config, signer, rules, stages."""

    engine: Engine
    config: Config
    signer: IdSigner
    rules: RuleSet
    stages: tuple[Stage, ...]


BATCH = 50
_TABLE = Inbound.__table__  # type: ignore[attr-defined]
# SET comes from the parameters given at execution; the statement itself is compiled once.
_UPDATE_ROW = update(_TABLE).where(_TABLE.c.id == bindparam("row_id"))


def process_pending(runner: Runner, limit: int | None = None,
                    mailbox: str | None = None) -> Counter[str]:
    """Process every pending row (of one mailbox); returns a count per outcome."""
    counts: Counter[str] = Counter()
    ids = pending_ids(runner.engine, limit, mailbox)
    for start in range(0, len(ids), BATCH):
        for result in process_batch(runner, ids[start:start + BATCH]):
            counts[result.outcome if result.status == "processed" else result.status] += 1
    return counts


def process_one(runner: Runner, inbound_id: int) -> Outcome:
    """Run the pipeline for one row (e.g. a quarantine retry) and commit its outcome."""
    results = process_batch(runner, [inbound_id])
    if not results:
        raise LookupError(f"inbound {inbound_id} has no stored mail")
    return results[0]


def process_batch(runner: Runner, ids: list[int]) -> list[Outcome]:
    """Process rows in one transaction, each message inside its own SAVEPOINT.

    A message's writes and its row's new status are released together; a stop signal or an
    error rolls back that message alone. The batch commits at the end: a crash before it
    leaves every row of the batch ``received``, to be processed again from scratch.
    """
    done: list[tuple[MessageContext, Outcome]] = []
    table = Inbound.__table__  # type: ignore[attr-defined]
    with Session(runner.engine, expire_on_commit=False) as session:
        stmt = select(table.c.id, table.c.raw, table.c.mailbox, table.c.message_id,
                      table.c.attempts).where(table.c.id.in_(ids))
        by_id = {r.id: r for r in session.execute(stmt)}
        for inbound_id in ids:
            row = by_id.get(inbound_id)
            if row is not None and row.raw is not None:
                ctx = MessageContext(row.id, row.raw, row.mailbox, row.message_id or None)
                done.append((ctx, _process(runner, session, ctx, row.attempts)))
        session.commit()
    for ctx, outcome in done:
        _log(ctx, outcome)
    return [outcome for _ctx, outcome in done]


def _process(runner: Runner, session: Session, ctx: MessageContext, attempts: int) -> Outcome:
    services = Services(runner.config, runner.signer, session, runner.rules)
    status, reason, detail = _run(ctx, services, runner.stages)
    values: dict[str, Any] = {
        "status": status, "reason": reason, "detail": detail,
        "ticket_id": ctx.ticket_id if status == "processed" else None,
        "attempts": attempts + 1, "processed_at": utcnow()}
    if ctx.raw_replacement is not None:
        values["raw"] = ctx.raw_replacement
    session.execute(_UPDATE_ROW, {"row_id": ctx.inbound_id, **values})
    number = ctx.ticket_number if status == "processed" else None  # else rolled back
    return Outcome(ctx.inbound_id, status, reason, number, ctx.outcome)


def _run(ctx: MessageContext, services: Services,
         stages: tuple[Stage, ...]) -> tuple[str, str | None, str | None]:
    savepoint = services.session.begin_nested()
    try:
        run_pipeline(stages, ctx, services)
    except Discard as stop:
        savepoint.rollback()
        if stop.keep is not None:
            stop.keep(services.session)
        return "discarded", stop.reason, None
    except Hold as stop:
        savepoint.rollback()
        return "quarantined", stop.reason, stop.detail or None
    except Exception as exc:  # one bad mail never blocks the others
        savepoint.rollback()
        log.exception("inbound=%s failed in the pipeline", ctx.inbound_id)
        return "failed", type(exc).__name__, traceback.format_exc(limit=20)
    savepoint.commit()
    return "processed", None, None


def _log(ctx: MessageContext, outcome: Outcome) -> None:
    msgid = ctx.parsed.message_id if ctx.parsed else "?"
    log.info("inbound=%s msgid=%s ticket=%s status=%s outcome=%s reason=%s",
             outcome.inbound_id, msgid, outcome.ticket_number or "-", outcome.status,
             outcome.outcome, outcome.reason or "-")
