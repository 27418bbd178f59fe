"""``mailer demo``: the whole pipeline on loopback, on embedded defaults.

Starts an embedded IMAP server (pymap, in-memory) and an SMTP sink (aiosmtpd), delivers
the dev corpus one mail at a time (replies rewritten to the ticket numbers this run
really issued, as a customer's mail client would carry them), runs the daemon's jobs once
after each delivery, and prints the tickets. Nothing leaves the machine.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from imapclient import IMAPClient
from sqlmodel import Session, select

from mailer import db
from mailer.app import App, build_app
from mailer.config import Config, parse_config
from mailer.corpus import load_labels, rewrite
from mailer.daemon import run_once
from mailer.errors import ConfigError
from mailer.export import iter_tickets
from mailer.models import Inbound, Ticket

DEMO_USER = "support@exchange.example"
PASSWORD_ENV = "MAILER_DEMO_IMAP_PASSWORD"


def default_corpus() -> Path:
    """The dev corpus next to the checkout (``../shared/corpus/dev``)."""
    env = os.environ.get("MAILER_CORPUS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared/corpus/dev"


def run_demo(corpus: Path | None, workdir: Path) -> int:
    """Run the demo; returns the exit code."""
    corpus = corpus or default_corpus()
    if not (corpus / "labels.jsonl").exists():
        raise ConfigError("--corpus", f"no labelled corpus at {corpus}")
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    password = secrets.token_urlsafe(12)
    os.environ[PASSWORD_ENV] = password
    with _pymap(password) as port, _smtp_sink() as smtp_port:
        config = _config(workdir, port, smtp_port)
        db.upgrade(config.database.url)
        app = build_app(config)
        print(f"IMAP on 127.0.0.1:{port} (pymap), SMTP sink on 127.0.0.1:{smtp_port}, "
              f"database {config.database.url}")
        _deliver(app, corpus, port, password)
        _print_tickets(app)
    print(f"\nexport: mailer --config {workdir / 'config.toml'} tickets export --format jsonl")
    return 0


def _config(workdir: Path, port: int, smtp_port: int) -> Config:
    url = f"sqlite:///{(workdir / 'mailer.db').resolve()}"
    text = (f'[database]\nurl = "{url}"\n\n[[mailboxes]]\nname = "demo"\nhost = "127.0.0.1"\n'
            f'port = {port}\nsecurity = "none"\nusername = "{DEMO_USER}"\n'
            f'password_env = "{PASSWORD_ENV}"\n\n[smtp]\nhost = "127.0.0.1"\n'
            f'port = {smtp_port}\n\n[storage]\n'
            f'attachments_dir = "{(workdir / "attachments").resolve()}"\n')
    (workdir / "config.toml").write_text(text, encoding="utf-8")
    import tomllib

    return parse_config(tomllib.loads(text), str(workdir / "config.toml"))


def _deliver(app: App, corpus: Path, port: int, password: str) -> None:
    labels = load_labels(corpus)
    from mailer.corpus import load_tokens

    tokens = load_tokens(corpus)
    opened: dict[str, str] = {}
    with IMAPClient("127.0.0.1", port=port, ssl=False, timeout=10) as client:
        client.login(DEMO_USER, password)
        for i, label in enumerate(labels, 1):
            raw = rewrite((corpus / label.file).read_bytes(),
                          lambda t: opened.get(tokens.get(t, "")),
                          lambda kind, number: app.signer.make(kind, number))
            client.append("INBOX", raw)
            run_once(app)
            number = _ticket_of_last(app)
            if number:
                opened[label.file] = number
            print(f"\rdelivered {i}/{len(labels)}", end="", flush=True)
    print()


def _ticket_of_last(app: App) -> str | None:
    with Session(app.engine) as session:
        row = session.exec(select(Inbound).order_by(Inbound.id.desc())).first()  # type: ignore[union-attr]
        ticket = session.get(Ticket, row.ticket_id) if row and row.ticket_id else None
        return ticket.number if ticket else None


def _print_tickets(app: App) -> None:
    print(f"\n{'NUMBER':<10} {'STATUS':<8} {'MSGS':>4} {'REQUESTER':<34} SUBJECT")
    count = 0
    for t in iter_tickets(app.engine):
        subject = "".join(c if c.isprintable() else " " for c in t["subject"])[:60]
        print(f"{t['number']:<10} {t['status']:<8} {len(t['messages']):>4} "
              f"{t['requester'][:34]:<34} {subject}")
        count += 1
    with Session(app.engine) as session:
        held = session.exec(select(Inbound).where(Inbound.status != "processed")).all()
    print(f"\n{count} tickets; not ticketed: " + ", ".join(
        f"#{r.id} {r.status} ({r.reason})" for r in held))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise ConfigError("demo", "the embedded IMAP server (pymap) exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise ConfigError("demo", "the embedded IMAP server did not start")


@contextmanager
def _pymap(password: str) -> Iterator[int]:
    port = _free_port()
    exe = Path(sys.executable).with_name("pymap")
    cmd = [str(exe), "--host", "127.0.0.1", "--port", str(port), "--no-service", "admin",
           "dict", "--demo-user", DEMO_USER, "--demo-password", password]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def _smtp_sink() -> Iterator[int]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    port = _free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
