"""Real servers for the integration tests.

- `Dovecot` runs Debian's ``dovecot-imapd`` as root from a temp dir on a free loopback port
  (the recipe in ``shared/notes/pitfalls.md``) and seeds or inspects mailboxes over IMAP.
  Several instances can run side by side: each has its own port, ``base_dir`` and config,
  and nothing reads ``/etc/dovecot`` or touches the system Dovecot service.
- `DropProxy` is a loopback TCP proxy that can cut its connections after N bytes, to test
  that an IMAP connection dropped in the middle of a FETCH is survived.
- `temporary_pg_database` creates and drops a throwaway PostgreSQL database.

Every wait here polls with a deadline; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import signal
import socket
import stat
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import imapclient
import psycopg
from imapclient.exceptions import IMAPClientError
from psycopg import sql

DOVECOT_BIN = Path("/usr/sbin/dovecot")
MAIL_USER = "vmail"
LOOPBACK = "127.0.0.1"
PG_HOST = "127.0.0.1"
PG_PORT = 5432
#: Connect and read timeouts for helper connections: a dead server fails a test, never hangs it.
IMAP_TIMEOUT = imapclient.SocketTimeout(connect=5.0, read=30.0)

_POLL_INTERVAL = 0.02
_DEADLINE = 15.0
# Unix socket paths are limited to 108 bytes; Dovecot's longest name under base_dir is ~20.
_MAX_BASE_DIR = 80
_APPENDUID = re.compile(rb"\[APPENDUID \d+ (\d+)\]")


class ServerUnavailableError(RuntimeError):
    """A server the tests need cannot be reached or started here."""


class DovecotError(RuntimeError):
    """Our Dovecot instance failed to start or stop; the message quotes its log."""


@dataclass(frozen=True, slots=True)
class ImapUser:
    """A mailbox on a test IMAP server and what a client needs to log in to it."""

    address: str
    password: str
    host: str
    port: int


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on `host` that was free a moment ago (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def dovecot_available() -> bool:
    """Tell whether Dovecot can run here: the binary is executable and we are root."""
    # Dovecot needs root to switch to the mail user and chroot its login processes.
    return os.access(DOVECOT_BIN, os.X_OK) and os.geteuid() == 0


def ensure_mail_user(name: str = MAIL_USER) -> pwd.struct_passwd:
    """Return the system user that owns the maildirs, creating it when missing."""
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    # A parallel test process may win the race; useradd then fails but the user exists.
    done = subprocess.run(
        ["useradd", "-r", "-M", "-s", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise DovecotError(f"cannot create user {name!r}: {done.stderr.strip()}") from None


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = _DEADLINE) -> None:
    """Poll `predicate` until it is true; raise `TimeoutError` naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(_POLL_INTERVAL)


def port_open(host: str, port: int) -> bool:
    """Tell whether something accepts TCP connections on (host, port)."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


_CONFIG = """\
# Written by tests/servers.py. Self-contained: nothing under /etc/dovecot is read.
instance_name = mailer-{port}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = {host}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_plugins =
mail_location = maildir:{root}/mail/%u
mail_fsync = never
# Without this, login works but opening the mailbox fails (uid 0 is refused regardless).
first_valid_uid = 1
# One passwd-file per user: Dovecot re-checks a passwd-file at most once a second, so a
# user added right after a login to a shared file could be refused for up to a second.
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users/%u
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_user} home={root}/mail/%u
}}
protocol imap {{
  mail_max_userip_connections = 200
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
# Removing the auth-penalty socket turns off anvil's growing delay after failed logins.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


class Dovecot:
    """A private Dovecot IMAP server whose files all live under `root`.

    Example::

        with Dovecot(tmp_path / "dovecot") as server:  # start() ... stop()
            server.add_user("support@exchange.example", "secret")
            uid = server.append("support@exchange.example", "INBOX", raw_bytes)

    Users can be added while the server runs: each has its own passwd-file, read on login.
    `root` and its parents get the "others may traverse" bit (``o+x``, never read), because
    the auth process runs as ``dovecot`` and the mail processes as ``vmail``.
    """

    def __init__(self, root: Path, *, host: str = LOOPBACK, port: int | None = None) -> None:
        self.root = Path(root).absolute()
        self._host = host
        self._port = port if port is not None else free_port(host)
        self._port_fixed = port is not None
        self._users: dict[str, str] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        if len(str(self.base_dir)) > _MAX_BASE_DIR:
            raise ValueError(f"{self.base_dir} is too long for unix socket paths")

    def __repr__(self) -> str:
        return f"<Dovecot {self._host}:{self._port} root={self.root}>"

    def __enter__(self) -> Dovecot:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        """The loopback address Dovecot listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The IMAP (plain text) port; it stays the same across `restart`."""
        return self._port

    @property
    def base_dir(self) -> Path:
        """Dovecot's runtime directory (sockets and ``master.pid``)."""
        return self.root / "run"

    @property
    def log_path(self) -> Path:
        """Dovecot's log file, quoted in start/stop errors."""
        return self.root / "dovecot.log"

    @property
    def running(self) -> bool:
        """Tell whether the master process we started is still alive."""
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start Dovecot and return once it greets IMAP clients."""
        if self._proc is not None:
            raise DovecotError(f"{self!r} is already started")
        mail_user = ensure_mail_user()
        self._prepare(mail_user)
        for attempt in range(3):
            self._write_config()
            try:
                self._spawn()
            except DovecotError as exc:
                # free_port() is racy: another process may take the port before we bind it.
                if self._port_fixed or attempt == 2 or "in use" not in str(exc):
                    raise
                self._port = free_port(self._host)
            else:
                self._port_fixed = True  # restart() must come back on the same port
                return

    def stop(self) -> None:
        """Stop Dovecot (SIGTERM to the master) and wait until its port is closed."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        pid = self.master_pid() or proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        try:
            proc.wait(timeout=_DEADLINE)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # The master waits for its children; this only catches a straggler in our group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        wait_until(lambda: not port_open(self._host, self._port), f"{self!r} to close its port")

    def restart(self) -> None:
        """Stop and start again on the same port; mail and users are kept."""
        self.stop()
        self.start()

    def master_pid(self) -> int | None:
        """Return the pid in ``base_dir/master.pid``, or None when there is none."""
        try:
            return int((self.base_dir / "master.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _prepare(self, mail_user: pwd.struct_passwd) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _allow_traverse(self.root)
        for name in ("run", "state"):
            (self.root / name).mkdir(exist_ok=True)
        mail = self.root / "mail"
        mail.mkdir(exist_ok=True)
        os.chown(mail, mail_user.pw_uid, mail_user.pw_gid)
        mail.chmod(0o700)
        for address in self._users:
            self._write_user(address)

    def _write_config(self) -> None:
        text = _CONFIG.format(root=self.root, host=self._host, port=self._port, mail_user=MAIL_USER)
        (self.root / "dovecot.conf").write_text(text)

    def _spawn(self) -> None:
        conf = self.root / "dovecot.conf"
        with (self.root / "dovecot.stderr").open("ab") as err:
            # -F keeps the master our child, so stop() can reap it; a new session keeps
            # Ctrl-C in the terminal from killing it before the fixture teardown runs.
            proc = subprocess.Popen(
                [str(DOVECOT_BIN), "-F", "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
            )
        deadline = time.monotonic() + _DEADLINE
        while not (self.master_pid() == proc.pid and _greets(self._host, self._port)):
            if proc.poll() is not None:
                raise DovecotError(f"dovecot exited with {proc.returncode}: {self._tail()}")
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise DovecotError(f"dovecot did not start: {self._tail()}")
            time.sleep(_POLL_INTERVAL)
        self._proc = proc

    def _tail(self, lines: int = 20) -> str:
        text = ""
        for path in (self.root / "dovecot.stderr", self.log_path):
            with contextlib.suppress(FileNotFoundError):
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # -- users -------------------------------------------------------------------------------

    def add_user(self, address: str, password: str) -> None:
        """Add (or re-password) a mail user; works whether or not the server runs."""
        for value in (address, password):
            if not value or any(c in value for c in ":/\r\n") or value != value.strip():
                raise ValueError(f"not usable in a passwd-file: {value!r}")
        self._users[address] = password
        if self.root.exists():
            self._write_user(address)

    def password(self, address: str) -> str:
        """Return the password `add_user` set for `address`."""
        return self._users[address]

    def _write_user(self, address: str) -> None:
        # Written aside and renamed in, so the auth process never reads half a file.
        # World-readable on purpose: the auth process runs as `dovecot`; these are test secrets.
        users = self.root / "users"
        users.mkdir(mode=0o755, exist_ok=True)
        tmp = users / f".{address}.tmp"
        tmp.write_text(f"{address}:{{PLAIN}}{self._users[address]}\n")
        tmp.chmod(0o644)
        tmp.replace(users / address)

    # -- mailbox helpers over IMAP -----------------------------------------------------------

    @contextlib.contextmanager
    def connect(self, user: str) -> Iterator[imapclient.IMAPClient]:
        """Yield an IMAP client logged in as `user`, logged out (or closed) afterwards."""
        client = imapclient.IMAPClient(self._host, self._port, ssl=False, timeout=IMAP_TIMEOUT)
        try:
            client.login(user, self._users[user])
            yield client
        finally:
            try:
                client.logout()
            except (IMAPClientError, OSError):
                with contextlib.suppress(IMAPClientError, OSError):
                    client.shutdown()

    def append(self, user: str, folder: str, raw: bytes, flags: Iterable[bytes] = ()) -> int:
        """Append `raw` to `folder` of `user` with `flags`; return the new message's UID."""
        with self.connect(user) as client:
            answer = client.append(folder, raw, flags=tuple(flags))
        found = _APPENDUID.search(answer)
        if found is None:
            raise DovecotError(f"APPEND answered without APPENDUID: {answer!r}")
        return int(found.group(1))

    def create_folder(self, user: str, name: str) -> None:
        """Create folder `name` for `user` unless it exists."""
        with self.connect(user) as client:
            if not client.folder_exists(name):
                client.create_folder(name)

    def clear(self, user: str) -> None:
        """Expunge every message in every folder of `user` (the folders stay)."""
        with self.connect(user) as client:
            for flags, _delimiter, name in client.list_folders():
                if b"\\Noselect" in flags:
                    continue
                info = client.select_folder(name)
                if info.get(b"EXISTS", 0):
                    client.add_flags("1:*", [imapclient.DELETED], silent=True)
                    client.expunge()

    def uids(self, user: str, folder: str = "INBOX") -> list[int]:
        """Return the UIDs in `folder` of `user`, ascending, without changing any flag."""
        with self.connect(user) as client:
            client.select_folder(folder, readonly=True)
            return sorted(client.search("ALL"))

    def flags(self, user: str, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        """Return ``{uid: flags}`` for `folder` of `user`, leaving out the session's \\Recent."""
        with self.connect(user) as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            if not uids:
                return {}
            data = client.fetch(uids, ["FLAGS"])
        return {
            uid: tuple(f for f in data[uid][b"FLAGS"] if f != b"\\Recent") for uid in sorted(data)
        }

    def kill_imap_sessions(self) -> int:
        """SIGKILL this instance's per-connection ``imap`` processes; return how many.

        Clients logged in at that moment see their connection drop mid-session.
        """
        master = self.master_pid()
        if master is None or not self.running:
            return 0
        victims = [p.pid for p in _processes() if p.ppid == master and p.comm == "imap"]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_until(
            lambda: not any(p.pid in victims and p.state != "Z" for p in _processes()),
            "killed imap processes to exit",
        )
        return len(victims)


@dataclass(frozen=True, slots=True)
class _Process:
    pid: int
    comm: str
    state: str
    ppid: int


def _processes() -> Iterator[_Process]:
    """Yield the live processes from /proc (Linux only)."""
    with os.scandir("/proc") as entries:  # closed even when the caller stops early
        names = [e.name for e in entries if e.name.isdigit()]
    for name in names:
        try:
            text = Path("/proc", name, "stat").read_text()
        except OSError:
            continue  # it exited while we looked
        # "pid (comm) state ppid ..."; comm may hold spaces or parentheses.
        head, _, rest = text.rpartition(")")
        fields = rest.split()
        yield _Process(int(name), head.partition("(")[2], fields[0], int(fields[1]))


def _greets(host: str, port: int) -> bool:
    """Tell whether an IMAP server on (host, port) sends its ``* OK`` greeting."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            return sock.recv(256).startswith(b"* OK")
    except OSError:
        return False


def _allow_traverse(path: Path) -> None:
    """Add ``o+x`` to `path` and its parents so non-root Dovecot processes can reach it."""
    # pytest makes its temp dirs 0700 (and resets pytest-of-<user> to 0700 next session).
    for directory in (path, *path.parents):
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


# -- DropProxy ----------------------------------------------------------------------------------


@dataclass(eq=False)
class _Pair:
    """One proxied connection: the client's socket, ours to the server, and a byte meter."""

    client: socket.socket
    upstream: socket.socket
    metered: int = 0  # bytes sent server->client since the proxy was last armed
    pumps: int = 2
    reset: bool = False
    sockets: tuple[socket.socket, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.sockets = (self.client, self.upstream)

    def cut(self, *, reset: bool = False) -> None:
        """Wake both pumps; with `reset`, closing the sockets will send RST instead of FIN."""
        if reset and not self.reset:
            self.reset = True
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # SHUT_RD wakes a blocked recv() without sending FIN, so the close() sends RST.
        how = socket.SHUT_RD if self.reset else socket.SHUT_RDWR
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(how)


class DropProxy:
    """A TCP proxy on a free loopback port to (`upstream_host`, `upstream_port`).

    It forwards both ways in background threads until `drop_after_bytes` arms it: then,
    once a connection has sent N more bytes server->client, every live connection is cut
    (both directions), the proxy disarms itself and goes on accepting new connections.
    """

    def __init__(self, upstream_host: str, upstream_port: int, *, host: str = LOOPBACK) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._lock = threading.Lock()
        self._pairs: set[_Pair] = set()
        self._threads: list[threading.Thread] = []
        self._limit: int | None = None
        self._reset = False
        self._drops = 0
        self._closed = False
        self._listener = socket.create_server((host, 0))
        self._host: str = self._listener.getsockname()[0]
        self._port: int = self._listener.getsockname()[1]
        self._start_thread(self._accept_loop, "accept")

    def __repr__(self) -> str:
        return f"<DropProxy {self._host}:{self._port} -> {self._upstream[0]}:{self._upstream[1]}>"

    def __enter__(self) -> DropProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def host(self) -> str:
        """The address clients connect to."""
        return self._host

    @property
    def port(self) -> int:
        """The port clients connect to."""
        return self._port

    @property
    def drops(self) -> int:
        """How many times the proxy has cut its connections."""
        with self._lock:
            return self._drops

    @property
    def connections(self) -> int:
        """How many proxied connections are open now."""
        with self._lock:
            return len(self._pairs)

    def drop_after_bytes(self, n: int, *, reset: bool = False) -> None:
        """Cut all connections once one has forwarded `n` more bytes server->client.

        One-shot: the first cut disarms the proxy. With `reset`, the sockets are closed with
        RST (``ConnectionResetError`` for the client) instead of FIN (EOF).
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        with self._lock:
            for pair in self._pairs:
                pair.metered = 0
            self._limit = n
            self._reset = reset

    def close(self) -> None:
        """Stop accepting, cut every connection and wait for the threads to finish."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pairs = list(self._pairs)
        # shutdown() wakes the thread blocked in accept(); close() alone would not (Linux).
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for pair in pairs:
            pair.cut()
        for thread in self._threads:
            thread.join(timeout=_DEADLINE)

    def _start_thread(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=f"DropProxy-{name}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _address = self._listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self._upstream, timeout=5.0)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            pair = _Pair(client, upstream)
            with self._lock:
                if self._closed:
                    client.close()
                    upstream.close()
                    return
                self._pairs.add(pair)
                self._start_thread(self._pump, "up", pair, client, upstream, False)
                self._start_thread(self._pump, "down", pair, upstream, client, True)

    def _pump(self, pair: _Pair, src: socket.socket, dst: socket.socket, down: bool) -> None:
        try:
            while data := src.recv(65536):
                cut = False
                if down:
                    data, cut = self._meter(pair, data)
                if data:
                    dst.sendall(data)
                if cut:
                    self._cut_all()
                    return
        except OSError:
            pass  # the other side went away or we cut it
        finally:
            self._pump_done(pair)

    def _meter(self, pair: _Pair, data: bytes) -> tuple[bytes, bool]:
        """Count server->client bytes; return what to forward and whether to cut now."""
        with self._lock:
            room = None if self._limit is None else self._limit - pair.metered
            if room is None or len(data) < room:
                pair.metered += len(data)
                return data, False
            self._limit = None  # one-shot
            self._drops += 1
            return data[: max(room, 0)], True

    def _cut_all(self) -> None:
        with self._lock:
            pairs, reset = list(self._pairs), self._reset
        for pair in pairs:
            pair.cut(reset=reset)

    def _pump_done(self, pair: _Pair) -> None:
        # Either direction ending ends the connection; the last pump closes the sockets.
        pair.cut()
        with self._lock:
            pair.pumps -= 1
            last = pair.pumps == 0
            if last:
                self._pairs.discard(pair)
        if last:
            for sock in pair.sockets:
                sock.close()


# -- PostgreSQL ---------------------------------------------------------------------------------


def _pg_admin_connection() -> tuple[psycopg.Connection[tuple[object, ...]], str]:
    """Connect with trust auth as ``postgres`` or ``root``; return the connection and user."""
    errors = []
    for user in ("postgres", "root"):
        for dbname in ("test", "postgres"):
            try:
                conn = psycopg.connect(
                    host=PG_HOST,
                    port=PG_PORT,
                    user=user,
                    dbname=dbname,
                    connect_timeout=3,
                    autocommit=True,
                )
            except psycopg.OperationalError as exc:
                errors.append(f"{user}@{dbname}: {str(exc).strip()}")
                continue
            return conn, user
    raise ServerUnavailableError(f"PostgreSQL on {PG_HOST}:{PG_PORT}: " + "; ".join(errors))


@contextlib.contextmanager
def temporary_pg_database(prefix: str = "mailer_test") -> Iterator[str]:
    """Create a fresh PostgreSQL database, yield its SQLAlchemy URL, then drop it.

    Raises `ServerUnavailableError` when PostgreSQL cannot be reached.
    """
    admin, user = _pg_admin_connection()
    name = f"{prefix}_{secrets.token_hex(6)}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield f"postgresql+psycopg://{user}@{PG_HOST}:{PG_PORT}/{name}"
        finally:
            # FORCE ends sessions a test left open (PostgreSQL 13+).
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def pg_database_exists(url: str) -> bool:
    """Tell whether the database named at the end of `url` exists on the server."""
    name = url.rsplit("/", 1)[1]
    admin, _user = _pg_admin_connection()
    with admin:
        row = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None
