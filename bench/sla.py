"""SLA sweep over a large backlog.

    python -m bench.sla [--tickets 1000000] [--db sqlite|postgresql]

Fills the ticket table with N open tickets (1% of them with an SLA event due now), then times
one ``check_sla`` sweep (the job's single indexed query plus the handling of every due
ticket) and a second sweep with nothing due, and reports peak RSS of the sweep process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from mailer import db
from mailer.config import parse_config
from mailer.ids import IdSigner
from mailer.models import Ticket
from mailer.sla.check import check_sla
from mailer.sla.service import initial

CHUNK = 20_000


def rows(n: int, now: datetime, sla: Any) -> Any:
    """N ticket rows; every 100th has its first SLA event already due."""
    for i in range(n):
        due = i % 100 == 0
        created = now - timedelta(hours=23 if due else 1)
        yield {"status": "open", "requester": f"c{i}@example.com", "requester_name": "",
               "subject": f"ticket {i}", "participants": [f"c{i}@example.com"], "tags": [],
               "entities": {}, "created_at": created, "updated_at": created,
               "category": "withdrawal", "urgency": "normal", "language": "en",
               "breached_targets": [], "paused_seconds": 0.0,
               **initial(sla, "standard", created)}


def fill(url: str, n: int, now: datetime, sla: Any) -> float:
    engine = db.make_engine(url)
    table = Ticket.__table__  # type: ignore[attr-defined]
    start = time.perf_counter()
    batch: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for row in rows(n, now, sla):
            batch.append(row)
            if len(batch) == CHUNK:
                conn.execute(insert(table), batch)
                batch = []
        if batch:
            conn.execute(insert(table), batch)
    engine.dispose()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    config = parse_config({"agents": {"queue_address": "queue@exchange.example"}})
    now = datetime.now(UTC)
    with ExitStack() as stack:
        if args.db == "sqlite":
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            url = f"sqlite:///{tmp}/sla.db"
        else:
            from tests.servers import temporary_pg_database

            url = stack.enter_context(temporary_pg_database())
        db.upgrade(url)
        fill_s = fill(url, args.tickets, now, config.sla)
        engine = db.make_engine(url)
        signer = IdSigner(os.urandom(16), "exchange.example")
        start = time.perf_counter()
        counts = check_sla(engine, config, signer, now)
        sweep = time.perf_counter() - start
        start = time.perf_counter()
        idle = check_sla(engine, config, signer, now)
        idle_s = time.perf_counter() - start
        engine.dispose()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"db": args.db, "tickets": args.tickets, "due": args.tickets // 100,
              "fill_seconds": round(fill_s, 1), "sweep_seconds": round(sweep, 3),
              "events": dict(counts), "idle_sweep_seconds": round(idle_s, 4),
              "idle_events": dict(idle), "peak_rss_mb": round(rss, 1),
              "date": now.isoformat(timespec="seconds")}
    print(f"{args.db}: {args.tickets:,} open tickets ({args.tickets // 100:,} due), filled in "
          f"{fill_s:.0f}s")
    print(f"  sweep with due tickets: {sweep:.2f}s ({dict(counts)})")
    print(f"  sweep with nothing due: {idle_s * 1000:.1f} ms")
    print(f"  peak RSS: {rss:.0f} MB")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
