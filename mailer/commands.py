"""The CLI's command handlers: thin wrappers that call services and print results."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from mailer import db
from mailer.app import App, build_app, ingest_once, runner
from mailer.config import Config
from mailer.daemon import run_forever, run_once
from mailer.export import iter_tickets, quarantine_rows, ticket_dict
from mailer.ingest.process import process_one
from mailer.models import Inbound, Ticket
from mailer.tickets import parse_number


def _app(args: argparse.Namespace) -> App:
    config: Config = args.loaded_config
    db.ensure_schema(config.database.url)
    return build_app(config)


def run(args: argparse.Namespace) -> int:
    """``mailer run [--once]``."""
    app = _app(args)
    if args.once:
        run_once(app)
    else:
        run_forever(app)
    return 0


def poll_once(args: argparse.Namespace) -> int:
    """``mailer poll-once``: fetch and process once, print the counts."""
    app = _app(args)
    results, counts = ingest_once(app)
    for r in results:
        print(f"{r.mailbox}: fetched {r.fetched}, stored {r.stored}, duplicates "
              f"{r.duplicates}, too large {r.too_large}{' (more waiting)' if r.more else ''}")
    print("processed: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))
    for name, error in app.poll_errors.items():
        print(f"{name}: FAILED: {error}", file=sys.stderr)
    return 1 if app.poll_errors else 0


def db_upgrade(args: argparse.Namespace) -> int:
    """``mailer db upgrade``."""
    db.upgrade(args.loaded_config.database.url)
    print("database is up to date")
    return 0


def tickets_list(args: argparse.Namespace) -> int:
    """``mailer tickets list``."""
    app = _app(args)
    with Session(app.engine) as session:
        stmt = select(Ticket).order_by(Ticket.id.desc())  # type: ignore[union-attr]
        if args.status:
            stmt = stmt.where(Ticket.status == args.status)
        rows = session.exec(stmt.limit(args.limit)).all()
    print(f"{'NUMBER':<10} {'STATUS':<9} {'CATEGORY':<16} {'URGENCY':<9} {'REQUESTER':<32} "
          "SUBJECT")
    for t in rows:
        print(f"{t.number:<10} {t.status:<9} {t.category or '-':<16} {t.urgency or '-':<9} "
              f"{_clip(t.requester, 32):<32} {_clip(_oneline(t.subject), 60)}")
    print(f"{len(rows)} ticket(s)")
    return 0


def tickets_show(args: argparse.Namespace) -> int:
    """``mailer tickets show NUMBER``."""
    app = _app(args)
    with Session(app.engine) as session:
        ticket_id = parse_number(args.number)
        ticket = session.get(Ticket, ticket_id) if ticket_id is not None else None
        if ticket is None:
            print(f"mailer: no ticket {args.number}", file=sys.stderr)
            return 1
        data = ticket_dict(session, ticket, with_events=True)
    _print_ticket(data)
    return 0


def _print_ticket(data: dict[str, Any]) -> None:
    print(f"{data['number']}  [{data['status']}]  {_oneline(data['subject'])}")
    print(f"requester: {data['requester']}  category: {data['category'] or '-'}  "
          f"urgency: {data['urgency'] or '-'}  language: {data['language'] or '-'}")
    for m in data["messages"]:
        print(f"\n--- {m['direction']} {m['kind']} {m['date'] or ''} from {m['from']}")
        print(m["new_text"] or m["text"])
        for a in m["attachments"]:
            print(f"    [attachment] {_oneline(a['filename'])} {a['content_type']} {a['size']} B")
    print("\nhistory:")
    for e in data["events"]:
        print(f"  {e['at']} {e['kind']}")


def tickets_export(args: argparse.Namespace) -> int:
    """``mailer tickets export --format jsonl``."""
    app = _app(args)
    out = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
    try:
        count = 0
        for item in iter_tickets(app.engine, args.status):
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
            count += 1
    finally:
        if args.output:
            out.close()
    print(f"exported {count} ticket(s)", file=sys.stderr)
    return 0


def quarantine_list(args: argparse.Namespace) -> int:
    """``mailer quarantine list``."""
    rows = quarantine_rows(_app(args).engine)
    print(f"{'ID':>6} {'STATUS':<12} {'REASON':<24} {'MAILBOX':<12} {'UID':>7} MESSAGE-ID")
    for r in rows:
        print(f"{r['id']:>6} {r['status']:<12} {_clip(r['reason'] or '-', 24):<24} "
              f"{_clip(r['mailbox'], 12):<12} {r['uid']:>7} {_clip(r['message_id'], 60)}")
    print(f"{len(rows)} held")
    return 0


def quarantine_show(args: argparse.Namespace) -> int:
    """``mailer quarantine show ID``."""
    app = _app(args)
    with Session(app.engine) as session:
        row = session.get(Inbound, args.id)
        if row is None:
            print(f"mailer: no inbound mail {args.id}", file=sys.stderr)
            return 1
        print(f"id {row.id}: {row.status} ({row.reason or '-'}), mailbox {row.mailbox} "
              f"uid {row.uid}, {row.size} bytes, message-id {row.message_id}")
        print(row.detail or "")
    return 0


def quarantine_retry(args: argparse.Namespace) -> int:
    """``mailer quarantine retry ID``: run a held mail through the pipeline again."""
    app = _app(args)
    with Session(app.engine) as session:
        row = session.get(Inbound, args.id)
        if row is None or row.status not in ("quarantined", "failed"):
            print(f"mailer: {args.id} is not in quarantine", file=sys.stderr)
            return 1
        if row.raw is None:
            print(f"mailer: {args.id} has no stored bytes ({row.reason}); {row.detail}",
                  file=sys.stderr)
            return 1
    result = process_one(runner(app), args.id)
    print(f"{args.id}: {result.status} {result.reason or ''} "
          f"{result.ticket_number or ''}".rstrip())
    return 0 if result.status == "processed" else 1


def demo(args: argparse.Namespace) -> int:
    """``mailer demo``: see :mod:`mailer.demo`."""
    from mailer.demo import run_demo

    if not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)
    return run_demo(args.corpus, args.workdir)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _oneline(text: str) -> str:
    """Control characters from mail never reach the terminal."""
    return "".join(c if c.isprintable() else " " for c in text)


def rules_check(args: argparse.Namespace) -> int:
    """``mailer rules check [FILE]``: load and validate; errors name the rule and path."""
    from mailer.rules.loader import load_rules

    config: Config = args.loaded_config
    path = args.file or (Path(config.rules.path) if config.rules.path else None)
    ruleset = load_rules(path)
    print(f"{ruleset.source}: OK, {len(ruleset.rules)} rules, {len(ruleset.index)} keywords")
    return 0


def rules_explain(args: argparse.Namespace) -> int:
    """``mailer rules explain MAIL.eml``: the Decision, language, entities, redactions."""
    from mailer.rules.explain import explain_file

    config: Config = args.loaded_config
    report = explain_file(args.mail, config, is_reply=args.reply)
    if args.format == "json":
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:>10}: {_oneline(str(value)) if not isinstance(value, dict) else ''}")
            if isinstance(value, dict):
                for k, v in value.items():
                    print(f"{'':>12}{k}: {v}")
    return 0


def outbox_list(args: argparse.Namespace) -> int:
    """``mailer outbox list [--status S]``."""
    from mailer.models import Outbox

    app = _app(args)
    with Session(app.engine) as session:
        stmt = select(Outbox).order_by(Outbox.id.desc())  # type: ignore[union-attr]
        if args.status:
            stmt = stmt.where(Outbox.status == args.status)
        rows = session.exec(stmt.limit(args.limit)).all()
    print(f"{'ID':>6} {'STATUS':<10} {'KIND':<12} {'TRIES':>5} {'KEY':<28} TO / LAST ERROR")
    for r in rows:
        print(f"{r.id:>6} {r.status:<10} {r.kind:<12} {r.attempts:>5} "
              f"{_clip(r.dedupe_key, 28):<28} {r.to_addr} {_oneline(r.last_error or '')[:60]}")
    print(f"{len(rows)} row(s)")
    return 0


def outbox_retry(args: argparse.Namespace) -> int:
    """``mailer outbox retry ID``: send a failed or uncertain mail again."""
    from mailer.models import Outbox, utcnow

    app = _app(args)
    with Session(app.engine) as session:
        row = session.get(Outbox, args.id)
        if row is None or row.status not in ("failed", "uncertain", "suppressed"):
            print(f"mailer: outbox {args.id} is not failed, uncertain or suppressed",
                  file=sys.stderr)
            return 1
        row.status, row.next_attempt_at, row.attempts = "pending", utcnow(), 0
        session.add(row)
        session.commit()
    print(f"outbox {args.id}: queued again; the send-outbox job will send it")
    return 0


def reply(args: argparse.Namespace) -> int:
    """``mailer reply NUMBER --from AGENT --body-file F`` (and ``mailer note``)."""
    from mailer.outbound.agent import answer

    app = _app(args)
    body = args.body_file.read_text(encoding="utf-8")
    kind = answer(app, args.number, args.sender, body, internal=args.command == "note")
    print(f"{args.number}: {'internal note stored' if kind == 'note' else 'reply queued'}")
    return 0


def customers_set_code(args: argparse.Namespace) -> int:
    """``mailer customers set-code ADDRESS CODE``."""
    from mailer.models import Customer, utcnow

    code = args.code.strip()
    if not (4 <= len(code) <= 32 and code.isprintable()):
        print("mailer: the code must be 4 to 32 printable characters", file=sys.stderr)
        return 2
    app = _app(args)
    with Session(app.engine) as session:
        address = args.address.strip().lower()
        row = session.get(Customer, address) or Customer(address=address)
        row.anti_phishing_code, row.updated_at = code, utcnow()
        session.add(row)
        session.commit()
    print(f"anti-phishing code set for {address}")
    return 0


def doctor(args: argparse.Namespace) -> int:
    """``mailer doctor``: say what works and what does not."""
    from mailer.doctor import run

    results = run(args.loaded_config)
    for what, ok, detail in results:
        print(f"[{'ok' if ok else 'FAIL'}] {what}: {_oneline(detail)}")
    failed = sum(1 for _, ok, _ in results if not ok)
    print("all checks passed" if not failed else f"{failed} check(s) failed")
    return 0 if not failed else 1
