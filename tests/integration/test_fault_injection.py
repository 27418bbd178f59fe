"""Fault injection: the daemon SIGKILLed at random points, an IMAP server restarted in the
middle of a FETCH, SMTP down for an hour of simulated time, the database gone for a moment,
a full disk for attachments.

What must hold after every fault (the issue's words): every mail is exactly one ticket (or
one message on the ticket it answers) or one quarantine entry, every acknowledgement is sent
once, and nothing is left half-written. An acknowledgement a killed daemon had in flight
becomes ``uncertain`` and is never resent (at most once, README "Outbound mail"): the sink
has it at most once.

Kill points come from ``random.Random(SEED)`` (``MAILER_FAULT_SEED`` overrides it; the seed
is in every failure message): where each kill is aimed is replayable, the exact instruction
it lands on depends on the machine. The SIGKILL run uses ``store_url`` (SQLite, or
PostgreSQL when ``MAILER_TEST_DB=postgresql``); the database-outage tests need PostgreSQL.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from select import select as wait_readable
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import func
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from mailer import db
from mailer.app import App, build_app, ingest_once, send_once
from mailer.config import load_config
from mailer.ingest.attachments import AttachmentStore
from mailer.ingest.imap import FETCH_CHUNK
from mailer.ingest.process import BATCH
from mailer.models import (
    Attachment,
    Inbound,
    MailboxState,
    Message,
    Outbox,
    Ticket,
    TicketEvent,
    utcnow,
)
from mailer.pipeline import MessageContext, Services
from mailer.smtp import SmtpSender
from tests.fakes import FakeSource
from tests.integration.conftest import PASSWORD_ENV
from tests.servers import DropProxy
from tests.smtp_sink import SmtpSink

SEED = int(os.environ.get("MAILER_FAULT_SEED", "20261123"))
SUPPORT = "support@exchange.example"
DATE = "Mon, 20 May 2024 10:00:00 +0000"


def count(engine, model, *where) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(model).where(*where)).one()


def wait_for(predicate: Callable[[], bool], what: str, timeout: float) -> None:
    """Poll another process's progress with a deadline (never a fixed sleep)."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what} (seed {SEED})")
        time.sleep(0.1)


def plain(i: int, sender: str, subject: str, body: str, headers: str = "") -> bytes:
    return (f"From: Customer {i} <{sender}>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n"
            f"Message-ID: <m{i}@fault.example>\r\nDate: {DATE}\r\n{headers}"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n").encode()


def with_attachment(i: int, sender: str, payload: bytes) -> bytes:
    data = base64.encodebytes(payload).decode().replace("\n", "\r\n")
    return (f"From: Customer {i} <{sender}>\r\nTo: {SUPPORT}\r\n"
            f"Subject: Screenshot of deposit {i}\r\nMessage-ID: <m{i}@fault.example>\r\n"
            f"Date: {DATE}\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n"
            f"--b{i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"My deposit {i} of 250 USDT has not arrived, screenshot attached.\r\n"
            f"--b{i}\r\nContent-Type: image/png; name=\"shot{i}.png\"\r\n"
            f"Content-Disposition: attachment; filename=\"shot{i}.png\"\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{data}--b{i}--\r\n").encode()


BODIES = (
    "My withdrawal of {amount} USDT (order {order}) is still pending.",
    "我的提现 {amount} USDT 还没有到账，订单号 {order}。",
    "Мой вывод {amount} USDT до сих пор не пришёл, заказ {order}.",
    "Mi retiro de {amount} USDT sigue pendiente, orden {order}.",
    "Tôi rút {amount} USDT nhưng vẫn chưa nhận được, lệnh {order}.",
)


@dataclass(frozen=True, slots=True)
class Seeded:
    """One mail put into the mailbox and what must become of it."""

    raw: bytes
    expect: str  # the inbound status it must end in
    sender: str
    opens: bool = False  # opens a ticket (and is acknowledged)
    answers: int | None = None  # index of the mail it replies to
    attachment: bytes | None = None


def corpus(rng: random.Random, n: int) -> list[Seeded]:
    """Customer mail from distinct senders, ~10% with an attachment, replies to earlier
    mail, exact re-deliveries, ~2% header injection, auto-replies and list mail."""
    mails: list[Seeded] = []
    openers: list[int] = []
    for i in range(n):
        r, sender = rng.random(), f"c{i}@example.com"
        if r < 0.02:
            subject = f"=?utf-8?Q?help_{i}=0D=0ABcc:_victim@example.com?="
            mails.append(Seeded(plain(i, sender, subject, "buy now"), "quarantined", sender))
        elif r < 0.03:
            sender = f"news{i}@news.example.org"
            mails.append(Seeded(plain(i, sender, f"Weekly digest {i}", "Markets today.",
                                      "List-Id: <digest.news.example.org>\r\n"
                                      "List-Unsubscribe: <mailto:leave@news.example.org>\r\n"),
                                "discarded", sender))
        elif r < 0.04:
            mails.append(Seeded(plain(i, sender, "Out of office", "I am away this week.",
                                      "Auto-Submitted: auto-replied\r\n"), "discarded", sender))
        elif r < 0.045 and openers:
            first = mails[rng.choice(openers)]
            mails.append(Seeded(first.raw, "duplicate", first.sender))
        elif r < 0.095 and openers:
            j = rng.choice(openers)
            sender = mails[j].sender
            mails.append(Seeded(plain(i, sender, f"Re: Withdrawal {j} pending",
                                      f"Any news on this?\r\n\r\n> earlier mail {j}",
                                      f"In-Reply-To: <m{j}@fault.example>\r\n"
                                      f"References: <m{j}@fault.example>\r\n"),
                                "processed", sender, answers=j))
        elif r < 0.195:
            payload = b"\x89PNG\r\n\x1a\n" + rng.randbytes(rng.randint(200, 3000))
            mails.append(Seeded(with_attachment(i, sender, payload), "processed", sender,
                                opens=True, attachment=payload))
            openers.append(i)
        else:
            body = rng.choice(BODIES).format(amount=rng.randint(1, 99999),
                                              order=rng.randint(10**7, 10**8))
            mails.append(Seeded(plain(i, sender, f"Withdrawal {i} pending", body),
                                "processed", sender, opens=True))
            openers.append(i)
    kinds = Counter(m.expect for m in mails)
    assert min(kinds.values()) > 0 and len(kinds) == 4, kinds
    assert any(m.answers is not None for m in mails) and any(m.attachment for m in mails)
    return mails


def append_all(dovecot, user, raws: list[bytes]) -> list[int]:
    """Append mails in order over one IMAP connection; returns their UIDs."""
    uids = []
    with dovecot.connect(user.address) as client:
        for raw in raws:
            answer = client.append("INBOX", raw)
            uids.append(int(answer.split(b"APPENDUID ")[1].split()[1].rstrip(b"]")))
    return uids


# -- 1. SIGKILL at random points -------------------------------------------------------------

MAILS = 1000
KILLS = 50
FINAL_DEADLINE = 120.0
# The mail arrives in KILLS slices, one before each daemon starts: with all 1,000 in the
# mailbox at once, the first few daemons (100 mails a tick) fetched and processed all of it
# and every later kill hit an idle daemon.
SLICE = MAILS // KILLS
# Where each kill is aimed (seeded), so that kills land in every phase on a slow machine as
# on a fast one:
# - start-up: 10-90% of the median time from the go to "daemon started" (config, schema
#   check, signing key, build_app);
# - ingest: 0-30 ms after the daemon committed the new mail (it dies flagging it on the
#   server or inside the pipeline), or right after its first processing batch when more
#   than one batch waits;
# - send: right after the sink accepted 1-10 mails from this daemon (inside a send batch);
# - any: 0-0.8 s after "daemon started" (poll, process and send jobs run in parallel).
MODES = (("start-up", 0.2), ("ingest", 0.45), ("send", 0.2), ("any", 0.15))
TERMINAL = {"sent", "uncertain", "failed", "suppressed"}

# The daemon's imports cost ~1.2 s of CPU (2+ s on a busy two-core machine), so a process
# killed 0.05-0.8 s after `python -m mailer run` would always die importing, before touching
# anything. Each daemon is therefore started ahead: it imports mailer.cli (no I/O, no
# database), says "ready", and runs exactly what `python -m mailer run` runs when told "go".
LAUNCHER = """\
import sys
import mailer.cli
print("ready", flush=True)
if sys.stdin.readline().strip() == "go":
    raise SystemExit(mailer.cli.main(sys.argv[1:]))
"""


class DaemonPool:
    """`mailer run` processes started ``ahead`` at a time, each released by a "go"."""

    def __init__(self, config: Path, env: dict[str, str], logs: Path, ahead: int = 2) -> None:
        self.argv = [sys.executable, "-c", LAUNCHER, "run", "--config", str(config)]
        self.env, self.logs, self.ahead = env, logs, ahead
        self.idle: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.started = 0
        self.logs.mkdir(exist_ok=True)
        for _ in range(ahead):
            self._spawn()

    def _spawn(self) -> None:
        path = self.logs / f"daemon-{self.started + len(self.idle):03d}.log"
        with path.open("wb") as log_file:
            proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=log_file)
        self.idle.append((proc, path))

    def go(self) -> tuple[subprocess.Popen[bytes], Path]:
        """Release the oldest ready daemon and start another one warming up."""
        proc, path = self.idle.pop(0)
        self._spawn()
        assert proc.stdout is not None and proc.stdin is not None
        ready, _, _ = wait_readable([proc.stdout], [], [], 60)
        line = proc.stdout.readline() if ready else b""
        assert line == b"ready\n", f"daemon did not get ready: {path.read_text()[-2000:]}"
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        self.started += 1
        return proc, path

    def close(self) -> None:
        """Idle daemons read EOF instead of "go" and exit."""
        for proc, _path in self.idle:
            close_pipes(proc)
            proc.wait(timeout=60)
        self.idle.clear()


def close_pipes(proc: subprocess.Popen[bytes]) -> None:
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


def daemon_config(tmp: Path, url: str, user, sink: SmtpSink) -> Path:
    path = tmp / "config.toml"
    path.write_text(f"""
[database]
url = "{url}"
[[mailboxes]]
name = "support"
host = "{user.host}"
port = {user.port}
security = "none"
username = "{user.address}"
password_env = "{PASSWORD_ENV}"
max_per_run = 100
[smtp]
host = "{sink.host}"
port = {sink.port}
[storage]
attachments_dir = "{tmp / 'att'}"
[support]
addresses = ["{SUPPORT}"]
message_id_domain = "exchange.example"
[scheduler]
poll_interval_seconds = 1
send_interval_seconds = 1
sla_interval_seconds = 1
[outbound]
# Only one daemon runs at a time here, so any row still `sending` when a send tick starts
# was claimed by a killed daemon: let it become `uncertain` quickly.
sending_lease_seconds = 1
[logging]
level = "INFO"
""")
    return path


@dataclass(frozen=True, slots=True)
class Snapshot:
    inbound: int
    received: int
    outbox: Counter[str]
    sending: frozenset[int]  # ids of outbox rows claimed and not yet recorded

    @property
    def done(self) -> int:
        return self.inbound - self.received

    @property
    def unsent(self) -> int:
        return sum(n for status, n in self.outbox.items() if status not in TERMINAL)


def snapshot(engine) -> Snapshot:
    with Session(engine) as session:
        statuses = Counter(session.exec(select(Inbound.status)))
        outbox = Counter(session.exec(select(Outbox.status)))
        sending = frozenset(session.exec(select(Outbox.id).where(Outbox.status == "sending")))
    return Snapshot(sum(statuses.values()), statuses["received"], outbox, sending)


@dataclass(slots=True)
class Kill:
    mode: str  # where it was aimed (MODES)
    phase: str  # where it landed: start-up, ingest, send, ingest+send or idle
    stuck: int  # outbox rows this daemon claimed and left `sending` (fate unknown)
    startup: float | None  # seconds from the go to "daemon started"


def phase_of(log_text: str, before: Snapshot, after: Snapshot, accepted: int) -> str:
    """Where the kill landed, judged from the daemon's log, the database and the sink."""
    if "daemon started" not in log_text:
        return "start-up"
    parts = []
    if after.received:
        parts.append("ingest")  # stored mail not yet processed: inside an ingest tick
    if accepted and after.unsent:
        parts.append("send")  # it was sending, and mail was left to send
    return "+".join(parts) or "idle"


def startup_seconds(log_text: str, go: float) -> float | None:
    """From the go to the log line "daemon started" (log times are local wall time)."""
    line = next((x for x in log_text.splitlines() if "daemon started" in x), None)
    if line is None:
        return None
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp() - go


def alive(proc: subprocess.Popen[bytes], log_path: Path) -> None:
    if proc.poll() is not None:
        pytest.fail(f"daemon exited on its own ({proc.returncode}): "
                    f"{log_path.read_text()[-3000:]}")


def await_start(proc: subprocess.Popen[bytes], log_path: Path) -> None:
    def up() -> bool:
        alive(proc, log_path)
        return "daemon started" in log_path.read_text()

    wait_for(up, "the daemon to start", 60)


def until(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll the daemon's progress until ``predicate`` or ``timeout``; say which."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def aim(mode: str, rng: random.Random, kills: list[Kill], engine, sink: SmtpSink,
        proc: subprocess.Popen[bytes], log_path: Path, before: Snapshot, accepted: int) -> float:
    """Wait for the moment ``mode`` aims at; returns the delay still to wait before the kill."""
    fraction, batch, soon, mails, late = (rng.uniform(0.1, 0.9), rng.random() < 0.5,
                                          rng.uniform(0.0, 0.03), rng.randint(1, 10),
                                          rng.uniform(0.0, 0.8))
    if mode == "start-up":
        seen = sorted(k.startup for k in kills if k.startup is not None)
        return fraction * (seen[len(seen) // 2] if seen else 0.25)
    await_start(proc, log_path)
    if mode == "ingest":
        batch = batch and before.received + SLICE > BATCH

        def committed() -> bool:
            alive(proc, log_path)
            now = snapshot(engine)
            return now.done > before.done if batch else now.inbound > before.inbound

        until(committed, 10)
        return 0.0 if batch else soon
    if mode == "send":
        def sent() -> bool:
            alive(proc, log_path)
            return sink.accepted - accepted >= mails

        until(sent, 3)
        return 0.0
    return late


def test_sigkill_at_random_points(tmp_path, store_url, dovecot, imap_user):
    rng = random.Random(SEED)
    mails = corpus(rng, MAILS)
    by_uid: dict[int, int] = {}

    def deliver(k: int) -> None:
        uids = append_all(dovecot, imap_user, [m.raw for m in mails[k * SLICE:][:SLICE]])
        by_uid.update(zip(uids, range(k * SLICE, (k + 1) * SLICE), strict=True))

    engine = db.make_engine(store_url)
    kills: list[Kill] = []
    started = time.monotonic()
    with SmtpSink() as sink:
        env = {**os.environ, PASSWORD_ENV: imap_user.password}
        pool = DaemonPool(daemon_config(tmp_path, store_url, imap_user, sink), env,
                          tmp_path / "logs")
        proc: subprocess.Popen[bytes] | None = None
        try:
            for life in range(KILLS):
                deliver(life)
                r, mode = rng.random(), MODES[-1][0]
                for name, share in MODES:
                    if r < share:
                        mode = name
                        break
                    r -= share
                before, accepted = snapshot(engine), sink.accepted
                proc, log_path = pool.go()
                go = time.time()
                delay = aim(mode, rng, kills, engine, sink, proc, log_path, before, accepted)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=delay)  # the kill point; returns early only on a crash
                    alive(proc, log_path)
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                close_pipes(proc)
                after, text = snapshot(engine), log_path.read_text()
                kills.append(Kill(mode, phase_of(text, before, after, sink.accepted - accepted),
                                  len(after.sending - before.sending), startup_seconds(text, go)))
            killing = time.monotonic() - started
            left = snapshot(engine)
            proc, log_path = pool.go()
            final: subprocess.Popen[bytes] = proc

            def finished() -> bool:
                if final.poll() is not None:
                    pytest.fail(f"final daemon died: {log_path.read_text()[-3000:]}")
                if "daemon started" not in log_path.read_text():
                    return False  # SIGTERM before the handlers are installed just kills it
                now = snapshot(engine)
                return now.inbound == MAILS and now.received == 0 and now.unsent == 0

            wait_for(finished, "the final daemon to store, process and send everything",
                     FINAL_DEADLINE)
            final.send_signal(signal.SIGTERM)
            assert final.wait(timeout=60) == 0, log_path.read_text()[-3000:]
            close_pipes(final)
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
                close_pipes(proc)
            pool.close()
        received = list(sink.messages)
    total = time.monotonic() - started
    assert sorted(by_uid) == list(range(1, MAILS + 1)), "Dovecot numbers UIDs 1..n"
    try:
        report = check_after_kills(engine, mails, by_uid, received, tmp_path / "att")
        assert Counter(read_seen(dovecot, imap_user).values()) == {True: MAILS}, \
            "every mail is flagged \\Seen on the server"
    finally:
        engine.dispose()
    phases = Counter(k.phase for k in kills)
    stuck = [k.stuck for k in kills if k.stuck]
    startups = sorted(k.startup for k in kills if k.startup is not None)
    report = (f"seed {SEED}: {len(kills)} kills in {killing:.1f}s, {total:.1f}s in all; "
              f"start-up (go to 'daemon started') median {startups[len(startups) // 2]:.2f}s; "
              f"kills aimed {dict(Counter(k.mode for k in kills))}, landed {dict(phases)}; "
              f"left for the final daemon: {MAILS - left.inbound} mails to fetch, "
              f"{left.received} to process, {left.unsent} to send; {report}; rows a kill "
              f"left `sending`: {stuck}")
    print("\n" + report)
    landed = Counter(part for phase in phases.elements() for part in phase.split("+"))
    assert landed["start-up"] >= 3 and landed["ingest"] >= 10 and landed["send"] >= 5, \
        f"the kills did not cover start-up, ingest and sending: {report}"
    # No job of any daemon failed (a kill leaves no traceback; an IMAP or SMTP error is a
    # logged warning): a failing job abandons its work half-way.
    failures = {path.name: job_failure(path.read_text()) for path in
                sorted((tmp_path / "logs").glob("*.log")) if "Traceback" in path.read_text()}
    assert not failures, f"jobs failed: {failures}; {report}"
    # At most one mail can be inside SMTP DATA when a daemon dies, so a kill may leave at
    # most one row whose fate is unknown. Any more are mails that were never handed to SMTP
    # and that will now never be sent automatically: acknowledgements lost.
    assert all(n <= 1 for n in stuck), report


def job_failure(log_text: str) -> str:
    """The innermost mailer frame and the error of the first traceback in a log."""
    tail = log_text[log_text.index("Traceback"):].splitlines()
    frames = [x.strip() for x in tail if x.strip().startswith('File "') and "/mailer/" in x]
    error = next((x for x in tail if x and not x[0].isspace() and "Error" in x), "?")
    return f"{frames[-1] if frames else '?'}: {error[:160]}"


def read_seen(dovecot, user) -> dict[int, bool]:
    return {uid: b"\\Seen" in flags for uid, flags in dovecot.flags(user.address).items()}


def check_after_kills(engine, mails: list[Seeded], by_uid: dict[int, int], received,
                      att_dir: Path) -> str:
    """Every invariant of the SIGKILL run; returns a one-line report of what was seen."""
    with Session(engine) as session:
        inbound = session.exec(select(Inbound).order_by(col(Inbound.id))).all()
        tickets = session.exec(select(Ticket)).all()
        messages = session.exec(select(Message).order_by(col(Message.id))).all()
        events = session.exec(select(TicketEvent)).all()
        outbox = session.exec(select(Outbox)).all()
        attachments = session.exec(select(Attachment)).all()
        state = session.get(MailboxState, "support")

    # Every mail stored once (one row per UID), none lost, none left unprocessed.
    assert len(inbound) == len(mails)
    assert sorted(r.uid for r in inbound) == sorted(by_uid)
    assert len({r.uidvalidity for r in inbound}) == 1
    assert all(r.imap_done for r in inbound), "a stored mail was never flagged"
    assert state is not None and state.last_uid == len(mails)
    wrong = {r.uid: (r.status, r.reason, mails[by_uid[r.uid]].expect) for r in inbound
             if r.status != mails[by_uid[r.uid]].expect}
    assert not wrong, f"mails in the wrong state (uid: got, reason, expected): {wrong}"
    row_of = {by_uid[r.uid]: r for r in inbound}

    # One ticket per opening mail, and replies on the ticket of the mail they answer.
    openers = [i for i, m in enumerate(mails) if m.opens]
    assert len(tickets) == len(openers)
    ticket_by_id = {t.id: t for t in tickets}
    assert sorted(t.requester for t in tickets) == sorted(mails[i].sender for i in openers)
    for index, row in row_of.items():
        mail = mails[index]
        if mail.expect != "processed":
            assert row.ticket_id is None, f"uid {row.uid} ({row.status}) points at a ticket"
        elif mail.answers is not None:
            assert row.ticket_id == row_of[mail.answers].ticket_id, f"reply uid {row.uid}"
        else:
            assert ticket_by_id[row.ticket_id].requester == mail.sender

    # Nothing half-written: each processed mail is one inbound message, nothing else is;
    # each ticket starts with the message of the mail that opened it, opened once.
    incoming = [m for m in messages if m.direction == "in"]
    per_inbound = Counter(m.inbound_id for m in incoming)
    processed = {r.id for r in inbound if r.status == "processed"}
    assert set(per_inbound) == processed and set(per_inbound.values()) == {1}
    ticket_of_row = {r.id: r.ticket_id for r in inbound}
    assert all(m.ticket_id == ticket_of_row[m.inbound_id] for m in incoming)
    first = {}
    for msg in messages:
        first.setdefault(msg.ticket_id, msg)
    assert set(first) == set(ticket_by_id), "a ticket without any message"
    opener_rows = {row_of[i].id for i in openers}
    assert all(m.inbound_id in opener_rows for m in first.values())
    opened = Counter(e.ticket_id for e in events if e.kind == "opened")
    assert opened == Counter(set(ticket_by_id)), "each ticket is opened exactly once"
    replies = sum(1 for m in mails if m.answers is not None)
    assert sum(1 for e in events if e.kind == "appended") == replies

    # Attachments: one row per attachment, its file complete under its sha256.
    store = AttachmentStore(att_dir)
    expected = Counter(hashlib.sha256(m.attachment).hexdigest() for m in mails if m.attachment)
    assert Counter(a.sha256 for a in attachments) == expected
    for att in attachments:
        data = store.path_for(att.sha256).read_bytes()
        assert hashlib.sha256(data).hexdigest() == att.sha256 and len(data) == att.size
    leftovers = sum(1 for _ in att_dir.rglob(".tmp-*")) if att_dir.exists() else 0

    # Acknowledgements: one row per ticket; sent ones reached the sink exactly once, the
    # ones a killed daemon had claimed are `uncertain` and reached it at most once.
    assert {r.kind for r in outbox} == {"ack"}
    assert Counter(r.ticket_id for r in outbox) == Counter(set(ticket_by_id))
    statuses = Counter(r.status for r in outbox)
    assert set(statuses) <= {"sent", "uncertain"}, statuses
    got = Counter(m.message["Message-ID"].strip() for m in received)
    assert max(got.values()) == 1, "a mail was sent twice"
    row_by_mid = {r.message_id: r for r in outbox}
    assert set(got) <= set(row_by_mid), "the sink got a mail that is not in the outbox"
    tokens = Counter(m.message["Subject"].rsplit("[#", 1)[-1] for m in received)
    assert max(tokens.values()) == 1, "a ticket got two acknowledgements"
    for mail in received:
        row = row_by_mid[mail.message["Message-ID"].strip()]
        assert mail.rcpt_tos == (row.to_addr,)
    for row in outbox:
        if row.status == "sent":
            assert got[row.message_id] == 1, f"outbox {row.id} is sent but never arrived"
    uncertain = [r for r in outbox if r.status == "uncertain"]
    uncertain_arrived = sum(got[r.message_id] for r in uncertain)
    out_msgs = Counter(m.ticket_id for m in messages if m.direction == "out")
    for row in outbox:
        assert out_msgs[row.ticket_id] == (row.status == "sent"), f"ticket {row.ticket_id}"

    return (f"{len(tickets)} tickets, acks {dict(statuses)}, uncertain ones that did "
            f"arrive {uncertain_arrived}, leftover .tmp files in the attachment store "
            f"{leftovers}")


# -- 2. the IMAP server restarts in the middle of a FETCH ------------------------------------

LATER = 10**9  # a monotonic "now" past any poll backoff


class FaultProxy(DropProxy):
    """A DropProxy that runs ``fault`` at the armed byte count, i.e. in the middle of a
    server response, before cutting its connections as usual."""

    fault: Callable[[], object] | None = None
    faults = 0

    def _cut_all(self) -> None:
        fault, self.fault = self.fault, None
        if fault is not None:
            fault()
            self.faults += 1
        super()._cut_all()


def bulky(i: int) -> bytes:
    return plain(i, f"c{i}@example.com", f"Deposit {i} missing",
                 f"Deposit {i} of 300 USDT has not arrived. " * 100)


def test_imap_restart_mid_fetch(make_app, store_url, dovecot, imap_user):
    n = 3 * FETCH_CHUNK
    append_all(dovecot, imap_user, [bulky(i) for i in range(n)])
    size = len(bulky(0))
    with FaultProxy(dovecot.host, dovecot.port) as proxy:
        app = make_app(store_url, host=proxy.host, port=proxy.port)
        engine = app.engine

        # The server restarts half-way through the second chunk's FETCH response.
        proxy.fault = dovecot.restart
        proxy.drop_after_bytes(int(1.5 * FETCH_CHUNK * size))
        results, counts = ingest_once(app)
        assert proxy.faults == 1 and dovecot.running
        assert results == [] and "fetch" in app.poll_errors["support"]
        assert count(engine, Inbound) == FETCH_CHUNK, "the first chunk was committed"
        assert counts == {"opened": FETCH_CHUNK}
        seen = read_seen(dovecot, imap_user)
        assert [uid for uid, flag in seen.items() if flag] == list(range(1, FETCH_CHUNK + 1))

        # The next poll loses its IMAP process (killed) in the middle of its first FETCH.
        killed: list[int] = []
        proxy.fault = lambda: killed.append(dovecot.kill_imap_sessions())
        proxy.drop_after_bytes(int(0.5 * FETCH_CHUNK * size))
        results, counts = ingest_once(app, now=time.monotonic() + LATER)
        assert proxy.faults == 2 and killed and killed[0] >= 1
        assert results == [] and "fetch" in app.poll_errors["support"]
        assert count(engine, Inbound) == FETCH_CHUNK and not counts

        results, counts = ingest_once(app, now=time.monotonic() + 2 * LATER)
    assert not app.poll_errors and [r.stored for r in results] == [n - FETCH_CHUNK]
    assert counts == {"opened": n - FETCH_CHUNK}
    with Session(engine) as session:
        rows = session.exec(select(Inbound)).all()
        requesters = sorted(session.exec(select(Ticket.requester)))
    assert sorted(r.uid for r in rows) == list(range(1, n + 1)), "each mail stored once"
    assert {r.status for r in rows} == {"processed"}
    assert requesters == sorted(f"c{i}@example.com" for i in range(n)), "one ticket each"
    assert all(read_seen(dovecot, imap_user).values())


# -- 3. SMTP down for an hour of simulated time ----------------------------------------------

QUEUE = "queue@exchange.example"


def desk_config(tmp: Path, url: str, sink: SmtpSink, **outbound: Any) -> Path:
    """A config file for an in-process daemon with a fake mailbox and the SMTP sink."""
    extra = "".join(f"{key} = {value}\n" for key, value in outbound.items())
    path = tmp / "desk.toml"
    path.write_text(f"""
[database]
url = "{url}"
[[mailboxes]]
name = "fake"
host = "127.0.0.1"
port = 143
security = "none"
username = "u"
password_env = "UNUSED"
[smtp]
host = "{sink.host}"
port = {sink.port}
[storage]
attachments_dir = "{tmp / 'att'}"
[agents]
queue_address = "{QUEUE}"
[outbound]
{extra}""")
    return path


def desk(config_path: Path, source: FakeSource, sender: Any = None) -> App:
    config = load_config(config_path)
    return build_app(config, source_factory=lambda box: source,
                     sender=sender or SmtpSender(config.smtp, None, timeout=5))


@pytest.fixture
def restore_logging():
    """mailer.cli.main() configures logging for the process; put pytest's setup back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def sink():
    with SmtpSink() as server:
        yield server


@dataclass(slots=True)
class Expected:
    """Our own model of one outbox row under the documented backoff."""

    attempts: int = 0
    due: datetime | None = None
    status: str = "pending"
    tried_at: list[int] = field(default_factory=list)


@pytest.mark.parametrize("max_attempts", [8, 4], ids=["retries-outlast-the-hour",
                                                      "gives-up-within-the-hour"])
def test_smtp_down_for_an_hour_simulated(tmp_path, store_url, sink, max_attempts,
                                         restore_logging):
    from mailer.cli import main

    path = desk_config(tmp_path, store_url, sink, max_attempts=max_attempts)
    source = FakeSource()
    app = desk(path, source)
    base, cap = app.config.outbound.retry_base_seconds, app.config.outbound.retry_max_seconds
    assert (base, cap) == (60.0, 3600.0), "the schedule below assumes the defaults"
    customers = [f"user{i}@example.com" for i in range(5)]
    for i, address in enumerate(customers):
        source.deliver(plain(i, address, f"Withdrawal {i} pending", "Still pending."))
    ingest_once(app)
    sink.refuse_connections(True)
    start = utcnow()
    model: dict[int, Expected] = {}
    try:
        for minute in range(0, 61, 5):
            now = start + timedelta(minutes=minute)
            send_once(app, now)
            with Session(app.engine) as session:
                rows = session.exec(select(Outbox)).all()
            assert len(rows) == 2 * len(customers)  # an ack and a notification each
            for row in rows:
                want = model.setdefault(row.id, Expected())
                if want.status == "pending" and (want.due is None or want.due <= now):
                    want.attempts += 1
                    want.tried_at.append(minute)
                    if want.attempts >= max_attempts:
                        want.status = "failed"
                    else:
                        want.due = now + timedelta(seconds=min(cap, base * 2 ** (want.attempts
                                                                                 - 1)))
                assert (row.status, row.attempts) == (want.status, want.attempts), minute
                if row.status == "pending":
                    assert abs(as_utc(row.next_attempt_at) - want.due) < timedelta(seconds=1)
                assert (row.last_error or "").startswith("SMTPConnectError"), row.last_error
        assert sink.connections == 0 and sink.messages == []
        schedule = {tuple(w.tried_at) for w in model.values()}
        assert schedule == ({(0, 5, 10, 15, 25, 45)} if max_attempts == 8
                            else {(0, 5, 10, 15)}), schedule
    finally:
        sink.refuse_connections(False)

    minute = 60
    while minute < 180:
        minute += 5
        send_once(app, start + timedelta(minutes=minute))
    with Session(app.engine) as session:
        rows = session.exec(select(Outbox).order_by(col(Outbox.id))).all()
        events = session.exec(select(TicketEvent).where(
            TicketEvent.kind == "delivery_failed")).all()
    if max_attempts == 8:
        assert {r.status for r in rows} == {"sent"} and not events
    else:
        # Given up: nothing is sent behind the operator's back, and every failure is
        # recorded on its ticket; `mailer outbox retry` then sends each exactly once.
        assert {r.status for r in rows} == {"failed"} and sink.messages == []
        assert Counter((e.ticket_id, e.detail["mail_kind"]) for e in events) == Counter(
            (r.ticket_id, r.kind) for r in rows)
        for row in rows:
            assert main(["outbox", "retry", str(row.id), "--config", str(path)]) == 0
        send_once(app, start + timedelta(minutes=minute + 5))
        send_once(app, start + timedelta(minutes=minute + 10))
        with Session(app.engine) as session:
            assert set(session.exec(select(Outbox.status))) == {"sent"}
    ids = Counter(m.message["Message-ID"] for m in sink.messages)
    assert len(ids) == 2 * len(customers) and set(ids.values()) == {1}, "each sent once"
    for address in customers:
        assert [m.rcpt_tos for m in sink.messages].count((address,)) == 1
    assert [m.rcpt_tos for m in sink.messages].count((QUEUE,)) == len(customers)
    app.engine.dispose()


def as_utc(value: datetime) -> datetime:
    """SQLite gives naive datetimes back; they were stored in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# -- 4. the database briefly unavailable (PostgreSQL) ----------------------------------------


@contextlib.contextmanager
def database_down(url: str) -> Iterator[None]:
    """PostgreSQL refuses new connections to the database and drops the open ones."""
    parsed = make_url(url)
    name = parsed.database
    with psycopg.connect(host=parsed.host, port=parsed.port, user=parsed.username,
                         dbname="postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(
            sql.Identifier(name)))
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        try:
            yield
        finally:
            admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(
                sql.Identifier(name)))


class Outage:
    """Starts a database outage from inside a running tick, and ends it on demand."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._stack = contextlib.ExitStack()
        self.started = 0

    def start(self) -> None:
        self._stack.enter_context(database_down(self.url))
        self.started += 1

    def end(self) -> None:
        self._stack.close()


class DiesAfterFetch(FakeSource):
    """A mailbox whose fetch returns just as the database goes away."""

    outage: Outage | None = None

    def fetch(self, uids, max_bytes):
        mails = super().fetch(uids, max_bytes)
        if self.outage is not None:
            self.outage.start()
            self.outage = None
        return mails


class OutageAtMessage:
    """A pipeline stage (after ``store``) that takes the database away at the n-th mail."""

    name = "outage"

    def __init__(self, outage: Outage, at: int) -> None:
        self.outage, self.at, self.seen = outage, at, 0

    def process(self, ctx: MessageContext, services: Services) -> None:
        self.seen += 1
        if self.seen == self.at:
            self.outage.start()


def tickets_by_requester(engine) -> Counter[str]:
    with Session(engine) as session:
        return Counter(session.exec(select(Ticket.requester)))


def test_database_briefly_unavailable(tmp_path, migrated_pg_url, sink):
    url = migrated_pg_url
    source = DiesAfterFetch()
    app = desk(desk_config(tmp_path, url, sink), source)
    engine = app.engine
    senders = [f"p{i}@example.com" for i in range(12)]

    def deliver(i: int) -> None:
        source.deliver(plain(i, senders[i], f"Withdrawal {i} pending", "Still pending."))

    # (a) Down for a whole tick: the tick raises, nothing is fetched or claimed.
    for i in range(3):
        deliver(i)
    with database_down(url):
        with pytest.raises(DBAPIError):
            ingest_once(app)
        with pytest.raises(DBAPIError):
            send_once(app)
    assert source.opened == 0 and not source.done
    results, counts = ingest_once(app)
    assert counts == {"opened": 3} and source.done == {1, 2, 3}

    # (b) Gone between the fetch and the commit of the chunk: nothing is flagged on the
    # server, the cursor stays, and the next tick fetches the mail again.
    for i in range(3, 6):
        deliver(i)
    source.outage = Outage(url)
    outage = source.outage
    try:
        with pytest.raises(DBAPIError):
            ingest_once(app)
    finally:
        outage.end()
    assert outage.started == 1 and source.done == {1, 2, 3}
    assert count(engine, Inbound) == 3
    results, counts = ingest_once(app)
    assert [r.stored for r in results] == [3] and counts == {"opened": 3}

    # (c) Gone in the middle of processing a batch: the whole batch stays `received` and
    # is processed once when the database is back.
    for i in range(6, 12):
        deliver(i)
    outage = Outage(url)
    stages = app.stages
    app.stages = (*stages, OutageAtMessage(outage, at=3))
    try:
        with pytest.raises(DBAPIError):
            ingest_once(app)
    finally:
        outage.end()
        app.stages = stages
    assert outage.started == 1 and count(engine, Inbound) == 12
    with Session(engine) as session:
        statuses = Counter(session.exec(select(Inbound.status)))
    # The mail being processed when the database went away (the third) and those after it
    # cannot have been committed (README: the whole batch of 50 stays `received`).
    assert set(statuses) == {"processed", "received"} and statuses["received"] >= 4, statuses
    assert source.done == set(range(1, 13)), "stored mail is flagged before processing"
    results, counts = ingest_once(app)
    assert counts == {"opened": statuses["received"]}

    assert tickets_by_requester(engine) == Counter(senders), "one ticket per mail"
    with Session(engine) as session:
        inbound = session.exec(select(Inbound)).all()
        per_inbound = Counter(session.exec(select(Message.inbound_id)))
        acks = Counter(session.exec(select(Outbox.ticket_id).where(Outbox.kind == "ack")))
    assert sorted(r.uid for r in inbound) == list(range(1, 13))
    assert {r.status for r in inbound} == {"processed"}
    assert set(per_inbound.values()) == {1} and len(per_inbound) == 12
    assert len(acks) == 12 and set(acks.values()) == {1}

    now = utcnow()
    send_once(app, now)
    send_once(app, now + timedelta(minutes=10))
    got = Counter(m.message["Message-ID"] for m in sink.messages)
    assert len(got) == 24 and set(got.values()) == {1}, "each ack and notification once"
    engine.dispose()


def test_daemon_rides_out_a_database_outage(tmp_path, migrated_pg_url, dovecot, imap_user,
                                           sink):
    """`mailer run` keeps running through an outage: its jobs fail (logged) while the
    database is gone, and everything that arrived meanwhile is handled once it is back."""
    url = migrated_pg_url
    engine = db.make_engine(url)
    config = daemon_config(tmp_path, url, imap_user, sink)
    env = {**os.environ, PASSWORD_ENV: imap_user.password}
    log_path = tmp_path / "daemon.log"
    append_all(dovecot, imap_user, [plain(i, f"o{i}@example.com", f"Withdrawal {i} pending",
                                          "Still pending.") for i in range(5)])
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "mailer", "run", "--config",
                                 str(config)], env=env, stderr=log_file)
    try:
        wait_for(lambda: count(engine, Outbox, Outbox.status == "sent") == 5,
                 "the first five acknowledgements", 60)
        engine.dispose()
        with database_down(url):
            append_all(dovecot, imap_user, [plain(i, f"o{i}@example.com", f"Deposit {i}",
                                                  "Missing.") for i in range(5, 10)])
            wait_for(lambda: log_path.read_text().count("raised an exception") >= 3,
                     "the daemon's jobs to fail while the database is gone", 30)
            assert proc.poll() is None, "the daemon died with the database"
        wait_for(lambda: count(engine, Outbox, Outbox.status == "sent") == 10,
                 "the mail that arrived during the outage to be handled", 60)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert tickets_by_requester(engine) == Counter(f"o{i}@example.com" for i in range(10))
    with Session(engine) as session:
        assert {r.status for r in session.exec(select(Inbound))} == {"processed"}
        assert set(session.exec(select(Outbox.status))) == {"sent"}
    assert Counter(m.message["Message-ID"] for m in sink.messages).most_common(1)[0][1] == 1
    assert len(sink.messages) == 10
    engine.dispose()


class DbLostAfterFirstMail:
    """Wraps the real sender: the database goes away once the first mail was accepted."""

    def __init__(self, sender: SmtpSender, outage: Outage) -> None:
        self.sender, self.outage = sender, outage

    async def send_batch(self, items, on_result=None, before_send=None):
        def record(result):
            if self.outage.started == 0:
                self.outage.start()
            assert on_result is not None
            return on_result(result)

        return await self.sender.send_batch(items, record, before_send)


def test_database_lost_in_the_middle_of_a_send_batch(tmp_path, migrated_pg_url, sink):
    url = migrated_pg_url
    path = desk_config(tmp_path, url, sink, sending_lease_seconds=60)
    source = FakeSource()
    outage = Outage(url)
    app = desk(path, source)
    app.sender = DbLostAfterFirstMail(SmtpSender(app.config.smtp, None, timeout=5), outage)
    for i in range(10):
        source.deliver(plain(i, f"s{i}@example.com", f"Withdrawal {i} pending", "Pending."))
    assert ingest_once(app)[1] == {"opened": 10}
    now = utcnow()
    try:
        with pytest.raises(DBAPIError):
            send_once(app, now)
    finally:
        outage.end()
    assert len(sink.messages) == 1, "the first mail went out, then the database went away"
    for minute in (5, 10, 15):  # past the lease
        send_once(app, now + timedelta(minutes=minute))
    with Session(app.engine) as session:
        rows = session.exec(select(Outbox)).all()
    statuses = Counter(r.status for r in rows)
    got = Counter(m.message["Message-ID"] for m in sink.messages)
    assert set(got.values()) == {1}, "nothing was sent twice"
    # The one mail whose result could not be recorded is `uncertain` (at most once); every
    # mail that never reached SMTP must still be sent.
    assert statuses == {"sent": len(rows) - 1, "uncertain": 1}, (
        f"{statuses}: {statuses['uncertain'] - 1} mails that never reached SMTP are parked "
        f"as `uncertain` and will never be sent automatically")
    app.engine.dispose()


# -- 5. a full disk for attachments ----------------------------------------------------------


def test_full_disk_for_attachments(tmp_path, store_url, dovecot, imap_user, monkeypatch,
                                   restore_logging):
    from mailer.cli import main
    from mailer.export import quarantine_rows

    monkeypatch.setenv(PASSWORD_ENV, imap_user.password)
    disk = tmp_path / "disk"
    disk.write_bytes(b"")  # a file where the directory should be: mkdir fails (root or not)
    att_dir = disk / "attachments"
    path = tmp_path / "config.toml"
    path.write_text(f"""
[database]
url = "{store_url}"
[[mailboxes]]
name = "support"
host = "{imap_user.host}"
port = {imap_user.port}
security = "none"
username = "{imap_user.address}"
password_env = "{PASSWORD_ENV}"
[storage]
attachments_dir = "{att_dir}"
""")
    rng = random.Random(SEED)
    payloads = {i: b"%PDF-1.4\n" + rng.randbytes(2000) for i in (1, 3, 5)}
    for i in range(6):
        sender = f"d{i}@example.com"
        raw = (with_attachment(i, sender, payloads[i]) if i in payloads
               else plain(i, sender, f"Withdrawal {i} pending", "Still pending."))
        dovecot.append(imap_user.address, "INBOX", raw)
    app = build_app(load_config(path))
    engine = app.engine
    _results, counts = ingest_once(app)
    assert counts == {"opened": 3, "failed": 3}
    with Session(engine) as session:
        failed = session.exec(select(Inbound).where(Inbound.status == "failed")
                              .order_by(col(Inbound.uid))).all()
        assert [r.uid for r in failed] == [2, 4, 6]  # UIDs of mails 1, 3, 5
        for row in failed:
            assert row.reason == "StorageError" and row.raw and row.ticket_id is None
            assert "cannot store attachment" in (row.detail or "")
            assert not session.exec(select(Message).where(Message.inbound_id == row.id)).all()
        assert not session.exec(select(Attachment)).all()
    assert tickets_by_requester(engine) == Counter(f"d{i}@example.com" for i in (0, 2, 4))
    assert [(q["id"], q["status"]) for q in quarantine_rows(engine)] == [
        (r.id, "failed") for r in failed]
    assert all(read_seen(dovecot, imap_user).values()), "held in our database, not lost"

    # Still full: a retry fails the same way and keeps the mail.
    assert main(["quarantine", "retry", str(failed[0].id), "--config", str(path)]) == 1
    assert count(engine, Inbound, Inbound.status == "failed") == 3

    disk.unlink()  # space again
    for row in failed:
        assert main(["quarantine", "retry", str(row.id), "--config", str(path)]) == 0
    assert tickets_by_requester(engine) == Counter(f"d{i}@example.com" for i in range(6))
    store = AttachmentStore(att_dir)
    with Session(engine) as session:
        assert {r.status for r in session.exec(select(Inbound))} == {"processed"}
        atts = session.exec(select(Attachment)).all()
    assert sorted(a.sha256 for a in atts) == sorted(
        hashlib.sha256(p).hexdigest() for p in payloads.values())
    for att in atts:
        assert hashlib.sha256(store.path_for(att.sha256).read_bytes()).hexdigest() == att.sha256
    assert main(["quarantine", "retry", str(failed[0].id), "--config", str(path)]) == 1
    engine.dispose()
