"""Command line: ``mailer [--config PATH] COMMAND``.

Only this module prints and exits; everything below raises errors from
:mod:`mailer.errors`, which are shown here as one plain line.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from mailer import commands, commands_sla
from mailer.config import load_config
from mailer.errors import MailerError
from mailer.logs import configure

log = logging.getLogger(__name__)
Handler = Callable[[argparse.Namespace], int]


def _parser() -> argparse.ArgumentParser:
    top = _common(None, False)
    # Sub-commands repeat the options without defaults, so `mailer --config X cmd` and
    # `mailer cmd --config X` both work (a sub-parser default would overwrite the first).
    common = _common(argparse.SUPPRESS, argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="mailer", parents=[top],
                                     description="Email-ticketing pipeline daemon")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", parents=[common], help="run the daemon")
    run.add_argument("--once", action="store_true", help="run every job once, then exit")
    run.set_defaults(handler=commands.run)
    sub.add_parser("poll-once", parents=[common], help="poll and process once"
                   ).set_defaults(handler=commands.poll_once)
    dbp = sub.add_parser("db", parents=[common], help="database").add_subparsers(
        dest="db_command", required=True)
    dbp.add_parser("upgrade", parents=[common], help="apply migrations"
                   ).set_defaults(handler=commands.db_upgrade)
    _tickets(sub, common)
    _quarantine(sub, common)
    _rules(sub, common)
    _outbound(sub, common)
    sp = sub.add_parser("sla", parents=[common], help="service levels").add_subparsers(
        dest="sla_command", required=True)
    report = sp.add_parser("report", parents=[common], help="met, breached, at risk")
    report.add_argument("--format", choices=["table", "json"], default="table")
    report.set_defaults(handler=commands_sla.report)
    explain = sp.add_parser("explain", parents=[common], help="one ticket's clocks")
    explain.add_argument("number")
    explain.set_defaults(handler=commands_sla.explain)
    sub.add_parser("doctor", parents=[common], help="check config, database, IMAP, SMTP"
                   ).set_defaults(handler=commands.doctor)
    demo = sub.add_parser("demo", parents=[common],
                          help="embedded IMAP + SMTP on loopback, the dev corpus, tickets out")
    demo.add_argument("--corpus", type=Path, default=None, help="directory of .eml files")
    demo.add_argument("--workdir", type=Path, default=Path("var/demo"))
    demo.add_argument("--verbose", action="store_true", help="show the daemon's log lines")
    demo.set_defaults(handler=commands.demo)
    return parser


def _common(config_default: object, quiet_default: object) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=config_default,
                        help="config file (default ./config.toml, else built-in defaults)")
    common.add_argument("-q", "--quiet", action="store_true", default=quiet_default,
                        help="log warnings only")
    return common


def _tickets(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    tp = sub.add_parser("tickets", parents=[common], help="tickets").add_subparsers(
        dest="tickets_command", required=True)
    lst = tp.add_parser("list", parents=[common], help="list tickets")
    lst.add_argument("--status", default=None)
    lst.add_argument("--limit", type=int, default=100)
    lst.set_defaults(handler=commands.tickets_list)
    show = tp.add_parser("show", parents=[common], help="show one ticket")
    show.add_argument("number")
    show.set_defaults(handler=commands.tickets_show)
    status = tp.add_parser("set-status", parents=[common], help="change a ticket's status")
    status.add_argument("number")
    status.add_argument("status", choices=["new", "open", "pending", "resolved", "closed"])
    status.set_defaults(handler=commands_sla.set_status)
    exp = tp.add_parser("export", parents=[common], help="export tickets")
    exp.add_argument("--format", choices=["jsonl"], default="jsonl")
    exp.add_argument("--output", type=Path, default=None, help="file (default stdout)")
    exp.add_argument("--status", default=None)
    exp.set_defaults(handler=commands.tickets_export)


def _quarantine(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                common: argparse.ArgumentParser) -> None:
    qp = sub.add_parser("quarantine", parents=[common], help="held mail").add_subparsers(
        dest="quarantine_command", required=True)
    qp.add_parser("list", parents=[common], help="list held mail"
                  ).set_defaults(handler=commands.quarantine_list)
    show = qp.add_parser("show", parents=[common], help="reason and detail of one entry")
    show.add_argument("id", type=int)
    show.set_defaults(handler=commands.quarantine_show)
    retry = qp.add_parser("retry", parents=[common], help="run an entry through the pipeline")
    retry.add_argument("id", type=int)
    retry.set_defaults(handler=commands.quarantine_retry)


def _rules(sub: argparse._SubParsersAction[argparse.ArgumentParser],
           common: argparse.ArgumentParser) -> None:
    rp = sub.add_parser("rules", parents=[common], help="classification rules").add_subparsers(
        dest="rules_command", required=True)
    check = rp.add_parser("check", parents=[common], help="validate a rule file")
    check.add_argument("file", type=Path, nargs="?", default=None,
                       help="rule file (default: the configured one)")
    check.set_defaults(handler=commands.rules_check)
    explain = rp.add_parser("explain", parents=[common],
                            help="classify a .eml file and print why, writing nothing")
    explain.add_argument("mail", type=Path)
    explain.add_argument("--reply", action="store_true", help="evaluate as a reply")
    explain.add_argument("--format", choices=["text", "json"], default="text")
    explain.set_defaults(handler=commands.rules_explain)


def _outbound(sub: argparse._SubParsersAction[argparse.ArgumentParser],
              common: argparse.ArgumentParser) -> None:
    op = sub.add_parser("outbox", parents=[common], help="outgoing mail").add_subparsers(
        dest="outbox_command", required=True)
    lst = op.add_parser("list", parents=[common], help="list outbox rows, newest first")
    lst.add_argument("--status", default=None)
    lst.add_argument("--limit", type=int, default=50)
    lst.set_defaults(handler=commands.outbox_list)
    retry = op.add_parser("retry", parents=[common], help="send a failed/uncertain row again")
    retry.add_argument("id", type=int)
    retry.set_defaults(handler=commands.outbox_retry)
    for name, text in (("reply", "answer the customer"), ("note", "add an internal note")):
        p = sub.add_parser(name, parents=[common], help=text)
        p.add_argument("number", help="ticket number, e.g. T-000123")
        p.add_argument("--from", dest="sender", required=True, help="the agent's address")
        p.add_argument("--body-file", type=Path, required=True)
        p.set_defaults(handler=commands.reply)
    cp = sub.add_parser("customers", parents=[common], help="customers").add_subparsers(
        dest="customers_command", required=True)
    code = cp.add_parser("set-code", parents=[common], help="set an anti-phishing code")
    code.add_argument("address")
    code.add_argument("code")
    code.set_defaults(handler=commands.customers_set_code)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mailer`` command."""
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
        configure(config.logging.level, quiet=args.quiet)
        args.loaded_config = config
        handler: Handler = args.handler
        return handler(args)
    except MailerError as exc:
        print(f"mailer: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
