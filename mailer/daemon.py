"""The daemon: APScheduler 3.x jobs with fixed ids, clean shutdown on SIGTERM/SIGINT.

A ``BackgroundScheduler`` with the default in-memory job store runs the jobs while the
main thread waits on an event that the signal handlers set; shutdown then waits for the
running job to finish its current message (every message commits on its own, so stopping
between messages loses nothing). Several daemons coordinate through the database, never
through a shared job store.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler

from mailer.app import App, ingest_once, reload_rules, send_once
from mailer.ops import serve
from mailer.sla.check import check_sla

log = logging.getLogger(__name__)


def ingest_job(app: App) -> None:
    """poll-mailbox: fetch new mail from every mailbox and run it through the pipeline."""
    results, counts = ingest_once(app)
    fetched = sum(r.fetched for r in results)
    if fetched or counts:
        log.info("ingest fetched=%d %s", fetched,
                 " ".join(f"{k}={v}" for k, v in sorted(counts.items())))


def send_job(app: App) -> None:
    """send-outbox: send every due outbox row."""
    counts = send_once(app)
    if counts:
        log.info("outbox %s", " ".join(f"{k}={v}" for k, v in sorted(counts.items())))


def sla_job(app: App) -> None:
    """check-sla: reminders and escalations for every SLA event now due."""
    counts = check_sla(app.engine, app.config, app.signer, datetime.now(UTC))
    if counts:
        log.info("sla %s", " ".join(f"{k}={v}" for k, v in sorted(counts.items())))


def jobs(app: App) -> dict[str, tuple[Callable[[], None], int]]:
    """Job id -> (callable, interval seconds), run in this order by ``run --once``."""
    sched = app.config.scheduler
    return {"poll-mailbox": (lambda: ingest_job(app), sched.poll_interval_seconds),
            "check-sla": (lambda: sla_job(app), sched.sla_interval_seconds),
            "send-outbox": (lambda: send_job(app), sched.send_interval_seconds)}


def run_once(app: App) -> None:
    """Run every job exactly once, in order, then return."""
    for job_id, (func, _interval) in jobs(app).items():
        log.info("job=%s running once", job_id)
        func()


def run_forever(app: App, stop: threading.Event | None = None) -> None:
    """Run the scheduler until SIGTERM/SIGINT (or ``stop`` is set)."""
    stop = stop or threading.Event()
    scheduler = BackgroundScheduler(timezone=UTC)
    for job_id, (func, interval) in jobs(app).items():
        scheduler.add_job(func, "interval", seconds=interval, id=job_id, name=job_id,
                          coalesce=True,
                          max_instances=1, next_run_time=datetime.now(UTC))
    previous = _install_handlers(stop)
    install_reload(app)
    server = serve(app.config.ops.listen, app.engine, lambda: dict(app.poll_seconds)) \
        if app.config.ops.listen else None
    scheduler.start()
    log.info("daemon started with jobs %s", ", ".join(jobs(app)))
    try:
        stop.wait()
    finally:
        log.info("shutting down: waiting for running jobs")
        scheduler.shutdown(wait=True)
        if server is not None:
            server.shutdown()
            server.server_close()
        _restore_handlers(previous)
        app.engine.dispose()
        log.info("daemon stopped")


Handler = Callable[[int, FrameType | None], object] | int | None


def _install_handlers(stop: threading.Event) -> dict[int, Handler]:
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    return {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}


def _restore_handlers(previous: dict[int, Handler]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def install_reload(app: App) -> None:
    """SIGHUP reloads the rule file; a broken file keeps the previous rules."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGHUP, lambda _s, _f: reload_rules(app))
