"""Ingest throughput: a bare IMAP fetch + parse loop against the whole poll -> ticket path.

Run as root (Dovecot needs it)::

    .venv/bin/python -m bench.ingest [--mails 5000] [--db sqlite|postgresql] [--json PATH]

1. A private Dovecot (``tests.servers.Dovecot``) in a temp dir gets one user and ``--mails``
   generated mails (:mod:`bench.mailgen`), appended with MULTIAPPEND; seeding is timed but
   is not part of the measurement.
2. ``bare``: imapclient connects, selects INBOX, searches every UID, fetches
   ``BODY.PEEK[]`` in chunks of ``FETCH_CHUNK`` and calls ``parse_mail`` on each mail.
   No database.
3. ``e2e``: a fresh, migrated SQLite or PostgreSQL database, a config with that one
   mailbox and ``max_per_run`` = N, then ``mailer.app.ingest_once`` until nothing is left
   to fetch or process. The outcome counts must add up to N.

Each phase runs in its own child process (``--phase bare|e2e``, internal), so its peak RSS
(``VmHWM``, see `peak_rss_mb`) is its own; bare runs first. ``--profile PATH`` runs the e2e
child under cProfile and writes the stats to PATH (read them with ``pstats``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

USER = "support@exchange.example"
PASSWORD_ENV = "MAILER_BENCH_IMAP_PASSWORD"
APPEND_BATCH = 200
IMAP_TIMEOUT = 300.0


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB.

    Linux: ``VmHWM`` of ``/proc/self/status``. Not ``ru_maxrss``: Linux carries that across
    fork and exec, so a child started by ``subprocess`` reports at least its parent's peak.
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# -- phases (run in a child process) ------------------------------------------------------


def run_bare(host: str, port: int, password: str, library: bool = False) -> dict[str, Any]:
    """Fetch every mail with BODY.PEEK[] in FETCH_CHUNK chunks and parse it; no database.

    ``library``: parse with plain mail-parser (``parse_from_bytes``), the reference a script
    using the chosen library would get, instead of mailer's own ``parse_mail``.
    """
    from imapclient import IMAPClient
    from mailparser import parse_from_bytes

    from mailer.errors import ParseError
    from mailer.ingest.imap import FETCH_CHUNK
    from mailer.ingest.parse import parse_mail

    parse: Any = parse_from_bytes if library else parse_mail

    rss_before = peak_rss_mb()
    parsed = failed = size = 0
    parse_seconds = 0.0
    start, cpu_start = time.perf_counter(), time.process_time()
    client = IMAPClient(host, port=port, ssl=False, timeout=IMAP_TIMEOUT)
    try:
        client.login(USER, password)
        client.select_folder("INBOX", readonly=True)
        uids = sorted(client.search("ALL"))
        for first in range(0, len(uids), FETCH_CHUNK):
            chunk = uids[first:first + FETCH_CHUNK]
            bodies = client.fetch(chunk, ["BODY.PEEK[]"])
            began = time.perf_counter()
            for uid in chunk:
                raw = bodies[uid][b"BODY[]"]
                size += len(raw)
                try:
                    parse(raw)
                except (ParseError, ValueError, LookupError):
                    failed += 1
                else:
                    parsed += 1
            parse_seconds += time.perf_counter() - began
    finally:
        client.logout()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {"phase": "bare-mp" if library else "bare", "mails": len(uids), "parsed": parsed,
            "parse_failed": failed,
            "bytes": size, "seconds": seconds, "cpu_seconds": cpu,
            "parse_seconds": parse_seconds,
            "imap_seconds": seconds - parse_seconds, "rss_before_mb": rss_before,
            "peak_rss_mb": peak_rss_mb()}


def run_e2e(host: str, port: int, url: str, workdir: Path, mails: int,
            profile: Path | None) -> dict[str, Any]:
    """``ingest_once`` until nothing is left; counts and checks every outcome."""
    import cProfile

    import mailer.app as app_module
    from mailer.config import parse_config
    from mailer.ingest.process import pending_ids

    config = parse_config({
        "database": {"url": url},
        "mailboxes": [{"name": "support", "host": host, "port": port, "security": "none",
                       "username": USER, "password_env": PASSWORD_ENV, "max_per_run": mails,
                       "timeout_seconds": IMAP_TIMEOUT}],
        "storage": {"attachments_dir": str(workdir / "attachments")},
        "support": {"addresses": ["support@exchange.example"],
                    "message_id_domain": "exchange.example"},
    })
    app = app_module.build_app(config)
    timings = {"poll": 0.0, "process": 0.0}
    _time_calls(app_module, timings)
    stage_seconds: Counter[str] = Counter()
    app.stages = tuple(_TimedStage(stage, stage_seconds) for stage in app.stages)
    statements = _count_statements(app.engine)
    rss_before = peak_rss_mb()
    counts: Counter[str] = Counter()
    polled: Counter[str] = Counter()
    ticks = 0
    profiler = cProfile.Profile() if profile else None
    start, cpu_start = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    while True:
        results, outcome = app_module.ingest_once(app)
        ticks += 1
        if app.poll_errors:
            raise RuntimeError(f"poll failed: {app.poll_errors}")
        counts.update(outcome)
        for result in results:
            polled.update({"fetched": result.fetched, "stored": result.stored,
                           "duplicates": result.duplicates, "too_large": result.too_large})
        more = any(r.more for r in results)
        if not more and not pending_ids(app.engine, 1):
            break
        if ticks > mails + 10:
            raise RuntimeError("ingest_once does not converge")
    if profiler:
        profiler.disable()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if profiler and profile:
        profiler.dump_stats(str(profile))
    peak = peak_rss_mb()
    database = _database_counts(app.engine)
    app.engine.dispose()
    return {"phase": "e2e", "mails": polled["fetched"], "seconds": seconds,
            "cpu_seconds": cpu, "ticks": ticks,
            "poll_seconds": timings["poll"], "process_seconds": timings["process"],
            "stage_seconds": dict(stage_seconds), "statements": dict(statements),
            "outcomes": dict(counts), "poll": dict(polled), "database": database,
            "rss_before_mb": rss_before, "peak_rss_mb": peak}


class _TimedStage:
    """A pipeline stage that adds its wall time to ``seconds[name]`` (stop signals too)."""

    def __init__(self, stage: Any, seconds: Counter[str]) -> None:
        self.stage, self.name, self.seconds = stage, stage.name, seconds

    def process(self, ctx: Any, services: Any) -> None:
        """See ``mailer.pipeline.Stage``."""
        began = time.perf_counter()
        try:
            self.stage.process(ctx, services)
        finally:
            self.seconds[self.name] += time.perf_counter() - began


def _time_calls(app_module: Any, timings: dict[str, float]) -> None:
    """Wrap ``mailer.app.poll_once``/``process_once`` (looked up by ``ingest_once`` at call
    time) to split the e2e time into its poll and process parts."""
    for name, key in (("poll_once", "poll"), ("process_once", "process")):
        original = getattr(app_module, name)

        def timed(*args: Any, _original: Any = original, _key: str = key,
                  **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                timings[_key] += time.perf_counter() - began

        setattr(app_module, name, timed)


def _count_statements(engine: Any) -> Counter[str]:
    """Count the SQL statements the engine sends, by verb and table (``INSERT ticket``)."""
    from sqlalchemy import event

    counts: Counter[str] = Counter()

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        words = statement.split()
        verb = words[0].upper() if words else "?"
        table = "?"
        for marker in ("INTO", "FROM", "UPDATE"):
            upper = [w.upper() for w in words]
            if marker in upper and upper.index(marker) + 1 < len(words):
                table = words[upper.index(marker) + 1].strip('"(')
                break
        counts[f"{verb} {table}"] += 1

    def committed(_conn: Any) -> None:
        counts["COMMIT"] += 1

    event.listen(engine, "before_cursor_execute", seen)
    event.listen(engine, "commit", committed)
    return counts


def _database_counts(engine: Any) -> dict[str, Any]:
    from sqlalchemy import text

    with engine.connect() as conn:
        statuses = {str(s): int(n) for s, n in conn.execute(
            text("SELECT status, COUNT(*) FROM inbound GROUP BY status"))}
        totals = {table: int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
                  for table in ("inbound", "ticket", "message", "attachment", "ticket_event")}
    return {"inbound_status": statuses, **totals}


# -- orchestration ------------------------------------------------------------------------


def seed(server: Any, raws: list[bytes]) -> float:
    """Append ``raws`` to the user's INBOX over one connection; returns the seconds taken."""
    start = time.perf_counter()
    with server.connect(USER) as client:
        if client.has_capability("MULTIAPPEND"):
            for first in range(0, len(raws), APPEND_BATCH):
                client.multiappend("INBOX", raws[first:first + APPEND_BATCH])
        else:
            for raw in raws:
                client.append("INBOX", raw)
        count = client.select_folder("INBOX", readonly=True)[b"EXISTS"]
    if count != len(raws):
        raise RuntimeError(f"seeded {count} mails, expected {len(raws)}")
    return time.perf_counter() - start


@contextlib.contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    """A fresh, migrated database URL: a SQLite file in ``tmp`` or a throwaway PG database."""
    from mailer import db

    if kind == "sqlite":
        url = f"sqlite:///{tmp / 'mailer.db'}"
        db.upgrade(url)
        yield url
        return
    from tests.servers import temporary_pg_database

    with temporary_pg_database("mailer_bench") as url:
        db.upgrade(url)
        yield url


def run_child(phase: str, server: Any, password: str, out: Path,
              extra: list[str]) -> dict[str, Any]:
    """Run one phase in a fresh interpreter and return what it wrote to ``out``."""
    cmd = [sys.executable, "-m", "bench.ingest", "--phase", phase, "--host", server.host,
           "--port", str(server.port), "--result", str(out), *extra]
    env = {**os.environ, PASSWORD_ENV: password}
    subprocess.run(cmd, check=True, env=env, cwd=Path(__file__).resolve().parent.parent)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    """Start Dovecot, seed it, run both phases, stop it; returns the report."""
    from bench.mailgen import generate_mails
    from tests.servers import Dovecot, dovecot_available

    if not dovecot_available():
        raise SystemExit("Dovecot is not usable here (needs /usr/sbin/dovecot and root)")
    load_at_start = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="mbench-"))
    server = Dovecot(tmp / "dovecot")
    try:
        began = time.perf_counter()
        mails = generate_mails(args.mails, args.seed)
        generate_seconds = time.perf_counter() - began
        raws = [m.raw for m in mails]
        password = secrets.token_hex(12)
        server.add_user(USER, password)
        server.start()
        seed_seconds = seed(server, raws)
        print(f"generated {len(raws)} mails ({sum(map(len, raws)) / 1e6:.1f} MB) in "
              f"{generate_seconds:.1f}s, seeded Dovecot in {seed_seconds:.1f}s", flush=True)
        bare = run_child("bare", server, password, tmp / "bare.json", [])
        bare_mp = run_child("bare-mp", server, password, tmp / "bare-mp.json", [])
        with database(args.db, tmp) as url:
            extra = ["--url", url, "--workdir", str(tmp), "--mails", str(args.mails)]
            if args.profile:
                extra += ["--profile", str(args.profile.resolve())]
            e2e = run_child("e2e", server, password, tmp / "e2e.json", extra)
    finally:
        server.stop()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    kinds = Counter(m.kind for m in mails)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"processor": cpu_model(),
                    "cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(),
                    "loadavg_at_start": load_at_start},
        "mails": args.mails, "seed": args.seed, "db": args.db,
        "generated": {"seconds": generate_seconds, "bytes": sum(map(len, raws)),
                      "kinds": dict(kinds)},
        "seed_seconds": seed_seconds,
        "bare": bare, "bare_mailparser": bare_mp, "e2e": e2e,
        "e2e_vs_bare_pct": 100 * bare["seconds"] / e2e["seconds"],
        "e2e_vs_bare_mailparser_pct": 100 * bare_mp["seconds"] / e2e["seconds"],
        "check": check(args.mails, e2e, kinds),
    }


def check(mails: int, e2e: dict[str, Any], kinds: Counter[str]) -> dict[str, Any]:
    """Every mail accounted for: tickets + appended + discarded + duplicates + quarantined."""
    out = Counter(e2e["outcomes"])
    poll = e2e["poll"]
    parts = {"tickets": out["opened"], "appended": out["appended"] + out["reopened"],
             "discarded": out["discarded"], "duplicates": poll.get("duplicates", 0),
             "quarantined": out["quarantined"] + poll.get("too_large", 0),
             "failed": out["failed"]}
    inbound = e2e["database"]["inbound"]
    expected = {"tickets": kinds["new"], "appended": kinds["reply"],
                "discarded": kinds["auto_reply"] + kinds["list"]}
    return {"breakdown": parts, "total": sum(parts.values()),
            "ok": sum(parts.values()) == mails == inbound and not parts["failed"],
            "expected_from_generator": expected}


def cpu_model() -> str:
    """The CPU model name (``platform.processor()`` is empty on most Linux systems)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def report(data: dict[str, Any]) -> None:
    """Print the table and the outcome breakdown."""
    bare, bare_mp, e2e = data["bare"], data["bare_mailparser"], data["e2e"]
    machine = data["machine"]
    print(f"\ningest benchmark  db={data['db']}  mails={data['mails']}  "
          f"{machine['processor']} x{machine['cpu_count']}  python {machine['python']}  "
          f"load {machine['loadavg_at_start']:.2f}")
    print(f"{'phase':<8} {'mails':>6} {'seconds':>8} {'mails/s':>8} {'peak RSS MB':>12} "
          f"{'start RSS MB':>12} {'CPU s':>7}")
    for row in (bare, bare_mp, e2e):
        print(f"{row['phase']:<8} {row['mails']:>6} {row['seconds']:>8.2f} "
              f"{row['mails'] / row['seconds']:>8.0f} {row['peak_rss_mb']:>12.1f} "
              f"{row['rss_before_mb']:>12.1f} {row['cpu_seconds']:>7.2f}")
    print(f"e2e/bare throughput: {data['e2e_vs_bare_pct']:.1f}% of fetch+mailer's parser, "
          f"{data['e2e_vs_bare_mailparser_pct']:.1f}% of fetch+plain mail-parser")
    print(f"  bare: imap {bare['imap_seconds']:.2f}s + parse {bare['parse_seconds']:.2f}s")
    print(f"  e2e:  poll {e2e['poll_seconds']:.2f}s + process {e2e['process_seconds']:.2f}s "
          f"in {e2e['ticks']} ingest_once call(s)")
    stages = e2e["stage_seconds"]
    rest = e2e["process_seconds"] - sum(stages.values())
    print("  process by stage: " + ", ".join(f"{k} {v:.2f}s" for k, v in stages.items())
          + f", row load/commit/other {rest:.2f}s")
    sql = e2e["statements"]
    print(f"  SQL per mail: {sum(v for k, v in sql.items()) / e2e['mails']:.1f} ("
          + ", ".join(f"{k} {v / e2e['mails']:.2f}" for k, v in
                      sorted(sql.items(), key=lambda kv: -kv[1])[:8]) + ")")
    result = data["check"]
    parts = " + ".join(f"{k} {v}" for k, v in result["breakdown"].items())
    print(f"check: {parts} = {result['total']} "
          f"({'OK' if result['ok'] else 'MISMATCH'}, expected {data['mails']})")
    print(f"  generator expected: {result['expected_from_generator']}; "
          f"inbound rows by status: {e2e['database']['inbound_status']}; "
          f"tickets {e2e['database']['ticket']}, messages {e2e['database']['message']}, "
          f"attachments {e2e['database']['attachment']}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bench.ingest``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=5000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON here")
    parser.add_argument("--seed", type=int, default=20240301, help="mail generator seed")
    parser.add_argument("--profile", type=Path, help="cProfile the e2e phase into this file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    internal = parser.add_argument_group("internal (child process)")
    internal.add_argument("--phase", choices=("bare", "bare-mp", "e2e"), help=argparse.SUPPRESS)
    internal.add_argument("--host", help=argparse.SUPPRESS)
    internal.add_argument("--port", type=int, help=argparse.SUPPRESS)
    internal.add_argument("--url", help=argparse.SUPPRESS)
    internal.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    internal.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        password = os.environ[PASSWORD_ENV]
        if args.phase in ("bare", "bare-mp"):
            result = run_bare(args.host, args.port, password, args.phase == "bare-mp")
        else:
            result = run_e2e(args.host, args.port, args.url, args.workdir, args.mails,
                             args.profile)
        args.result.write_text(json.dumps(result))
        return 0
    data = orchestrate(args)
    report(data)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2, ensure_ascii=False))
        print(f"wrote {args.json}")
    return 0 if data["check"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
