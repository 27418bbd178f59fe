"""The command line against a real Dovecot: run --once, tickets, export, quarantine, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from mailer.cli import main
from tests.integration.conftest import PASSWORD_ENV

SPAM = (b"From: bot@spam.test\r\nTo: support@exchange.example\r\n"
        b"Subject: =?utf-8?Q?help=0D=0ABcc:_x@victims.test?=\r\nMessage-ID: <s1@spam.test>\r\n"
        b"\r\nbuy now\r\n")
GOOD = (b"From: Ann <ann@example.com>\r\nTo: support@exchange.example\r\n"
        b"Subject: =?utf-8?B?5o+Q546w5pyq5Yiw6LSm?=\r\nMessage-ID: <g1@example.com>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nmy withdrawal is stuck\r\n")


@pytest.fixture(autouse=True)
def _restore_logging():
    """main() configures logging for the process; put the test runner's setup back."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def config_file(tmp_path, store_url, imap_user, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, imap_user.password)
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
attachments_dir = "{tmp_path / 'att'}"
[scheduler]
poll_interval_seconds = 3600
""")
    return path


def test_run_once_then_list_show_export(config_file, dovecot, imap_user, capsys, tmp_path):
    dovecot.append(imap_user.address, "INBOX", GOOD)
    assert main(["run", "--once", "--config", str(config_file)]) == 0
    assert main(["tickets", "list", "--config", str(config_file)]) == 0
    listing = capsys.readouterr().out
    assert "T-000001" in listing and "提现未到账" in listing
    assert main(["tickets", "show", "T-000001", "--config", str(config_file)]) == 0
    assert "my withdrawal is stuck" in capsys.readouterr().out
    out = tmp_path / "export.jsonl"
    assert main(["tickets", "export", "--format", "jsonl", "--output", str(out),
                 "--config", str(config_file)]) == 0
    (ticket,) = [json.loads(line) for line in out.read_text().splitlines()]
    for key in ("number", "status", "requester", "subject", "language", "category", "urgency",
                "tags", "entities", "created_at", "messages"):
        assert key in ticket
    (msg,) = ticket["messages"]
    assert msg["direction"] == "in" and msg["kind"] == "customer"
    assert msg["from"] == "ann@example.com" and msg["message_id"] == "<g1@example.com>"
    assert {"to", "date", "text", "attachments"} <= set(msg)


def test_quarantine_list_show_and_retry(config_file, dovecot, imap_user, capsys):
    dovecot.append(imap_user.address, "INBOX", SPAM)
    assert main(["poll-once", "--config", str(config_file)]) == 0
    assert "quarantined 1" in capsys.readouterr().out
    assert main(["quarantine", "list", "--config", str(config_file)]) == 0
    listing = capsys.readouterr().out
    assert "header-injection" in listing and "1 held" in listing
    assert main(["quarantine", "show", "1", "--config", str(config_file)]) == 0
    assert "CR, LF" in capsys.readouterr().out
    # Still hostile: a retry puts it back with the same reason, and says so.
    assert main(["quarantine", "retry", "1", "--config", str(config_file)]) == 1
    assert "quarantined header-injection" in capsys.readouterr().out
    assert main(["quarantine", "retry", "99", "--config", str(config_file)]) == 1


def test_bad_config_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[mailboxes]]\nname="x"\nhost="imap.example.com"\nport=993\n'
                   'security="none"\nusername="u"\npassword_env="P"\n')
    assert main(["tickets", "list", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mailer: error: mailboxes[0].security:")


def test_sigterm_stops_the_daemon_cleanly(config_file, dovecot, imap_user):
    dovecot.append(imap_user.address, "INBOX", GOOD)
    env = {**os.environ, PASSWORD_ENV: os.environ[PASSWORD_ENV]}
    proc = subprocess.Popen([sys.executable, "-m", "mailer", "run", "--config", str(config_file)],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if "ingest fetched=1" in line:
                break
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert "daemon stopped" in rest
    assert imap_user.password not in "".join(seen) + rest


def test_agent_cli_reply_note_code_and_outbox(config_file, dovecot, imap_user, capsys, tmp_path):
    with open(config_file, "a") as fh:
        fh.write('[agents]\naddresses = ["alice@exchange.example"]\n')
    dovecot.append(imap_user.address, "INBOX", GOOD)
    assert main(["poll-once", "--config", str(config_file)]) == 0
    assert main(["customers", "set-code", "ann@example.com", "OWL-42",
                 "--config", str(config_file)]) == 0
    body = tmp_path / "answer.txt"
    body.write_text("Your withdrawal is released.")
    assert main(["reply", "T-000001", "--from", "alice@exchange.example", "--body-file",
                 str(body), "--config", str(config_file)]) == 0
    assert main(["note", "T-000001", "--from", "alice@exchange.example", "--body-file",
                 str(body), "--config", str(config_file)]) == 0
    assert main(["reply", "T-000001", "--from", "mallory@evil.example", "--body-file",
                 str(body), "--config", str(config_file)]) == 2
    capsys.readouterr()
    assert main(["outbox", "list", "--config", str(config_file)]) == 0
    listing = capsys.readouterr().out
    assert "ack:T-000001" in listing and "reply:T-000001" in listing
    assert main(["outbox", "retry", "1", "--config", str(config_file)]) == 1  # still pending
    assert main(["--config", str(config_file), "tickets", "show", "T-000001"]) == 0
    assert "note" in capsys.readouterr().out


def test_doctor_says_what_works_and_what_does_not(config_file, dovecot, imap_user, capsys,
                                                  monkeypatch):
    from tests.smtp_sink import SmtpSink

    with SmtpSink() as sink:
        with open(config_file, "a") as fh:
            fh.write(f'[smtp]\nhost = "127.0.0.1"\nport = {sink.port}\n')
        assert main(["doctor", "--config", str(config_file)]) == 0
        out = capsys.readouterr().out
        assert "[ok] mailbox support" in out and "[ok] smtp" in out and "all checks passed" in out
    monkeypatch.setenv(PASSWORD_ENV, "wrong-password")
    assert main(["doctor", "--config", str(config_file)]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] mailbox support" in out and "wrong-password" not in out
    assert "[FAIL] smtp" in out  # the sink is gone


def test_metrics_and_healthz_endpoints(config_file, dovecot, imap_user):
    import urllib.request

    from mailer.app import build_app
    from mailer.config import load_config
    from mailer.ops import serve
    from tests.servers import free_port

    dovecot.append(imap_user.address, "INBOX", GOOD)
    dovecot.append(imap_user.address, "INBOX", SPAM)
    assert main(["poll-once", "--config", str(config_file)]) == 0
    app = build_app(load_config(config_file))
    port = free_port()
    server = serve(f"127.0.0.1:{port}", app.engine, lambda: {"support": 0.25})
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
        health = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz")
        assert health.status == 200
    finally:
        server.shutdown()
        server.server_close()
        app.engine.dispose()
    assert "mailer_mails_ingested 1" in body
    assert "mailer_mails_quarantined 1" in body
    assert 'mailer_tickets{state="new"} 1' in body
    assert "mailer_outbox_depth 1" in body  # the acknowledgement, not sent yet
    assert 'mailer_poll_seconds{mailbox="support"} 0.25' in body


def test_credentials_never_appear_in_logs_errors_or_exports(config_file, dovecot, imap_user,
                                                            corpus_dir, tmp_path):
    from tests.smtp_sink import SmtpSink

    smtp_password, id_secret = "smtp-S3cret-value-91", "id-S3cret-value-77"
    for path in sorted(corpus_dir.glob("*.eml"))[:20]:
        dovecot.append(imap_user.address, "INBOX", path.read_bytes())
    with SmtpSink() as sink:
        with open(config_file, "a") as fh:
            fh.write(f'[smtp]\nhost = "127.0.0.1"\nport = {sink.port}\nusername = "desk"\n'
                     f'password_env = "MAILER_TEST_SMTP_PASSWORD"\n'
                     f'[support]\nid_secret_env = "MAILER_TEST_ID_SECRET"\n'
                     f'[logging]\nlevel = "DEBUG"\n')
        env = {**os.environ, "MAILER_TEST_SMTP_PASSWORD": smtp_password,
               "MAILER_TEST_ID_SECRET": id_secret}
        outputs = []
        for command in (["run", "--once"], ["tickets", "export", "--format", "jsonl"],
                        ["outbox", "list"], ["quarantine", "list"], ["doctor"],
                        ["tickets", "show", "T-000001"]):
            done = subprocess.run([sys.executable, "-m", "mailer", *command, "--config",
                                   str(config_file)], env=env, capture_output=True, text=True,
                                  timeout=120)
            outputs.append(done.stdout + done.stderr)
    everything = "\n".join(outputs)
    assert "outbox=" in everything and "inbound=" in everything  # the run really logged
    for secret in (imap_user.password, smtp_password, id_secret):
        assert secret not in everything
