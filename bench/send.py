"""Send throughput: one SMTP connection per batch against one connection per mail.

::

    .venv/bin/python -m bench.send [--messages 2000] [--rounds 3] [--json PATH]

An aiosmtpd sink (``tests.smtp_sink.SmtpSink``, not storing mail) listens on a free loopback
port in this process. ``--messages`` small multipart mails (text + HTML, about 3 KB) are sent
with `mailer.smtp.SmtpSender` in both modes, alternating, ``--rounds`` times each; the best
round of each mode is reported, with the sink's count of accepted mails and sessions as a
check. Client and sink share one process (and the GIL), as in the integration tests.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from mailer.config import SmtpConfig
from mailer.smtp import SmtpSender, send_batch_sync
from tests.smtp_sink import SmtpSink

FROM = "support@exchange.example"
PARAGRAPH = (
    "Thank you for contacting support. Your request about a delayed withdrawal has been "
    "received and a member of our team will review the transaction shortly. "
)


def make_mail(n: int) -> EmailMessage:
    """A ~3 KB acknowledgement: plain text with an HTML alternative."""
    body = PARAGRAPH * 8
    msg = EmailMessage()
    msg["From"] = FROM
    msg["To"] = f"customer{n}@example.org"
    msg["Subject"] = f"[#{n}] We received your request"
    msg["Auto-Submitted"] = "auto-replied"
    msg.set_content(f"Ticket {n}\n\n{body}\n")
    msg.add_alternative(f"<html><body><h1>Ticket {n}</h1><p>{body}</p></body></html>",
                        subtype="html")
    return msg


def run_mode(sink: SmtpSink, items: list[tuple[str, EmailMessage]], persistent: bool) -> float:
    """Send every item in one batch; return messages per second, checking every one arrived."""
    sink.clear()
    config = SmtpConfig(host=sink.host, port=sink.port, security="none", from_address=FROM)
    sender = SmtpSender(config, password=None, timeout=30.0, persistent=persistent)
    started = time.perf_counter()
    results = send_batch_sync(sender, items)
    elapsed = time.perf_counter() - started
    failed = [r for r in results if not r.ok]
    if failed or sink.accepted != len(items):
        raise RuntimeError(f"{len(failed)} failed, sink accepted {sink.accepted}/{len(items)}")
    expected_sessions = 1 if persistent else len(items)
    if sink.connections != expected_sessions:
        raise RuntimeError(f"{sink.connections} sessions, expected {expected_sessions}")
    return len(items) / elapsed


def measure(messages: int, rounds: int) -> dict[str, Any]:
    """Run both modes ``rounds`` times, alternating, and keep every rate."""
    items = [(f"m{n}", make_mail(n)) for n in range(messages)]
    size = len(items[0][1].as_bytes())
    rates: dict[str, list[float]] = {"persistent": [], "per_message": []}
    with SmtpSink(store=False) as sink:
        run_mode(sink, items[:50], persistent=True)  # warm-up: imports, getfqdn, sockets
        for _ in range(rounds):
            rates["persistent"].append(run_mode(sink, items, persistent=True))
            rates["per_message"].append(run_mode(sink, items, persistent=False))
    best = {mode: max(values) for mode, values in rates.items()}
    return {
        "messages": messages,
        "rounds": rounds,
        "message_bytes": size,
        "msgs_per_s": best,
        "all_rounds": rates,
        "ratio": best["persistent"] / best["per_message"],
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def report(data: dict[str, Any]) -> None:
    """Print the numbers."""
    best = data["msgs_per_s"]
    print(f"{data['messages']} mails of {data['message_bytes']} bytes, best of "
          f"{data['rounds']} rounds, loopback aiosmtpd sink")
    print(f"  persistent   {best['persistent']:8.0f} msgs/s  (1 connection)")
    print(f"  per-message  {best['per_message']:8.0f} msgs/s  ({data['messages']} connections)")
    print(f"  ratio        {data['ratio']:8.2f}x")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="mails per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per mode (best is kept)")
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON here")
    args = parser.parse_args(argv)
    data = measure(args.messages, args.rounds)
    report(data)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
