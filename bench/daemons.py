"""Ingest with one and with three daemons on one PostgreSQL.

    python -m bench.daemons [--mails 3000] [--json PATH]

For each daemon count: a fresh Dovecot mailbox seeded with the same generated mails, a fresh
PostgreSQL database, K ``mailer run`` processes started together; the time until every mail
is processed gives mails/s. One mailbox is worked on by one daemon at a time (a lease), so
extra daemons add resilience and spread outbox/SLA work rather than ingest speed.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from bench.ingest import USER, database, seed
from bench.mailgen import generate
from mailer import db
from mailer.models import Inbound
from tests.servers import Dovecot

PASSWORD_ENV = "MAILER_BENCH_IMAP_PASSWORD"


def config(tmp: Path, url: str, port: int) -> Path:
    path = tmp / "config.toml"
    path.write_text(f"""[database]\nurl = "{url}"\n[[mailboxes]]\nname = "support"
host = "127.0.0.1"\nport = {port}\nsecurity = "none"\nusername = "{USER}"
password_env = "{PASSWORD_ENV}"\nmax_per_run = 1000\n[storage]
attachments_dir = "{tmp / 'att'}"\n[scheduler]\npoll_interval_seconds = 1
send_interval_seconds = 3600\nsla_interval_seconds = 3600\n[logging]\nlevel = "WARNING"\n""")
    return path


def finished(url: str, total: int) -> bool:
    engine = db.make_engine(url)
    try:
        with Session(engine) as session:
            done = session.exec(select(func.count()).select_from(Inbound).where(
                col(Inbound.status) != "received")).one()
        return bool(done >= total)
    finally:
        engine.dispose()


def run(daemons: int, raws: list[bytes]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mbench-d-") as name:
        tmp = Path(name)
        server, password = Dovecot(tmp / "dovecot"), secrets.token_hex(8)
        server.add_user(USER, password)
        server.start()
        try:
            seed(server, raws)
            with database("postgresql", tmp) as url:
                cfg = config(tmp, url, server.port)
                env = {**os.environ, PASSWORD_ENV: password}
                start = time.perf_counter()
                procs = [subprocess.Popen([sys.executable, "-m", "mailer", "run", "--config",
                                           str(cfg)], env=env, stderr=subprocess.DEVNULL)
                         for _ in range(daemons)]
                try:
                    while not finished(url, len(raws)):
                        time.sleep(0.25)
                    seconds = time.perf_counter() - start
                finally:
                    for proc in procs:
                        proc.send_signal(signal.SIGTERM)
                    for proc in procs:
                        proc.wait(timeout=60)
        finally:
            server.stop()
    return {"daemons": daemons, "mails": len(raws), "seconds": round(seconds, 2),
            "mails_per_s": round(len(raws) / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mails", type=int, default=3000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    raws = generate(args.mails, 20240301)
    rows = [run(k, raws) for k in (1, 3)]
    for r in rows:
        print(f"{r['daemons']} daemon(s) on PostgreSQL: {r['mails']} mails in {r['seconds']} s"
              f" = {r['mails_per_s']} mails/s (including process start-up)")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=2))


if __name__ == "__main__":
    main()
