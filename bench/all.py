"""Run every benchmark and write one markdown table: ``python -m bench.all [--quick]``.

Each benchmark runs as its own process (its JSON lands in bench/results/); the table, with
the machine and the date, goes to stdout and to bench/RESULTS.md. ``--quick`` uses smaller
sizes for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"


def run(name: str, *args: str) -> dict[str, Any]:
    """Run ``python -m bench.<name> ... --json OUT/<tag>.json`` and return the JSON."""
    tag = "-".join([name, *[a.lstrip("-") for a in args if not a.startswith("-")]])
    target = OUT / f"{tag}.json"
    cmd = [sys.executable, "-m", f"bench.{name}", *args, "--json", str(target)]
    print("+", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True, cwd=HERE.parent)
    data: dict[str, Any] = json.loads(target.read_text())
    return data


def cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def ingest_rows(result: dict[str, Any], label: str) -> list[str]:
    bare, e2e = result["bare"], result["e2e"]
    rate = e2e["mails"] / e2e["seconds"]
    return [f"| ingest end to end, {label}, {result['mails']:,} mails | {rate:,.0f} mails/s "
            f"({result['e2e_vs_bare_pct']:.0f}% of bare fetch+parse at "
            f"{bare['mails'] / bare['seconds']:,.0f}/s) | {e2e['peak_rss_mb']:.0f} MB |"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    n, backlog, tickets = ("1000", "5000", "100000") if args.quick else \
        ("5000", "50000", "1000000")
    rows = ["| benchmark | result | peak RSS |", "|---|---|---|"]
    rows += ingest_rows(run("ingest", "--mails", n, "--db", "sqlite"), "SQLite")
    rows += ingest_rows(run("ingest", "--mails", n, "--db", "postgresql"), "PostgreSQL")
    big = run("ingest", "--mails", backlog, "--db", "sqlite")
    rows.append(f"| daemon ingesting a {int(backlog):,}-mail backlog (SQLite) | "
                f"{big['e2e']['mails'] / big['e2e']['seconds']:,.0f} mails/s | "
                f"{big['e2e']['peak_rss_mb']:.0f} MB |")
    for r in run("daemons", "--mails", "1000" if args.quick else "3000")["rows"]:
        rows.append(f"| ingest with {r['daemons']} daemon(s) on one PostgreSQL, one mailbox, "
                    f"{r['mails']:,} mails | {r['mails_per_s']:,.0f} mails/s | |")
    rules = run("rules", "--mails", n)
    for r in rules["rows"]:
        rows.append(f"| {r['phase']} | {r['mails_per_s']:,} mails/s ({r['us_per_mail']} µs) | |")
    send = run("send", "--messages", "1000" if args.quick else "2000")
    rows.append(f"| SMTP send, persistent vs per-mail connection | {_send(send)} | |")
    for kind in ("sqlite", "postgresql"):
        sla = run("sla", "--tickets", tickets, "--db", kind)
        rows.append(f"| SLA sweep, {int(tickets):,} open tickets, 1% due ({kind}) | "
                    f"{sla['sweep_seconds']} s (idle sweep {sla['idle_sweep_seconds'] * 1000:.1f}"
                    f" ms) | {sla['peak_rss_mb']:.0f} MB |")
    head = (f"Machine: {cpu()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
            f"{datetime.now(UTC).strftime('%Y-%m-%d')}.")
    table = "\n".join([head, "", *rows]) + "\n"
    (HERE / "RESULTS.md").write_text(table)
    print(table)


def _send(data: dict[str, Any]) -> str:
    p, q = data["msgs_per_s"]["persistent"], data["msgs_per_s"]["per_message"]
    return f"{p:,.0f} vs {q:,.0f} mails/s ({p / q:.1f}x)"


if __name__ == "__main__":
    main()
