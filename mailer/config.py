"""Configuration: TOML file -> frozen dataclasses, validated at load.

Every error names the offending key (``mailboxes[0].port: must be 1..65535``). Passwords
are never read from the file: the file names an environment variable (``password_env``)
and :func:`secret` reads it when a connection is opened.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mailer.errors import ConfigError
from mailer.sla.policy import SlaConfig, parse_sla

SECURITY_MODES = ("ssl", "starttls", "none")
DEFAULT_CONFIG = Path("config.toml")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    """Where tickets live."""

    url: str = "sqlite:///./var/mailer.db"


@dataclass(frozen=True, slots=True)
class MailboxConfig:
    """One IMAP mailbox to poll."""

    name: str
    host: str
    port: int
    security: str
    username: str
    password_env: str
    folder: str = "INBOX"
    processed_folder: str | None = None
    max_per_run: int = 500
    timeout_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """The SMTP relay outbound mail goes through."""

    host: str = "127.0.0.1"
    port: int = 25
    security: str = "none"
    username: str | None = None
    password_env: str | None = None
    from_address: str = "support@exchange.example"


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """Where attachments go and how large a mail may be."""

    attachments_dir: str = "./var/attachments"
    max_message_bytes: int = 26_214_400


@dataclass(frozen=True, slots=True)
class SupportConfig:
    """Who we are: our addresses (never treated as customers) and how we sign Message-IDs."""

    addresses: tuple[str, ...] = ("support@exchange.example",)
    message_id_domain: str = "exchange.example"
    id_secret_env: str | None = None
    authserv_id: str | None = None
    flood_per_sender_per_hour: int = 30
    flood_per_domain_per_hour: int = 0


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """How often the daemon's jobs run."""

    poll_interval_seconds: int = 60
    send_interval_seconds: int = 10
    sla_interval_seconds: int = 60
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 600.0


@dataclass(frozen=True, slots=True)
class OutboundConfig:
    """Automatic mail: branding, templates, loop safety and retry policy."""

    brand: str = "Exchange Support"
    templates_dir: str | None = None
    auto_per_recipient_per_hour: int = 5
    batch_size: int = 50
    max_attempts: int = 8
    retry_base_seconds: float = 60.0
    retry_max_seconds: float = 3600.0
    sending_lease_seconds: float = 300.0
    suppress_bounced_days: int = 30
    response_hours: tuple[tuple[str, int], ...] = (
        ("critical", 1), ("high", 4), ("normal", 24), ("low", 24))

    def hours_for(self, urgency: str | None) -> int:
        """The first-response promise for an urgency (24 h when unknown)."""
        return dict(self.response_hours).get(urgency or "normal", 24)


@dataclass(frozen=True, slots=True)
class AgentsConfig:
    """Who the agents are and where new-ticket notifications go."""

    addresses: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    queue_address: str | None = None

    def is_agent(self, address: str) -> bool:
        """Whether ``address`` belongs to an agent (exact address or domain)."""
        address = address.lower()
        return address in self.addresses or address.rpartition("@")[2] in self.domains


@dataclass(frozen=True, slots=True)
class RulesConfig:
    """Where the classification rules are (default: the pack shipped in mailer/rules/)."""

    path: str | None = None


@dataclass(frozen=True, slots=True)
class OpsConfig:
    """The loopback HTTP endpoints /metrics and /healthz (unset: not served)."""

    listen: str | None = None


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """Log level and format."""

    level: str = "INFO"


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration."""

    database: DatabaseConfig
    mailboxes: tuple[MailboxConfig, ...]
    smtp: SmtpConfig
    storage: StorageConfig
    support: SupportConfig
    scheduler: SchedulerConfig
    logging: LoggingConfig
    rules: RulesConfig = RulesConfig()
    outbound: OutboundConfig = OutboundConfig()
    agents: AgentsConfig = AgentsConfig()
    sla: SlaConfig = dataclasses.field(default_factory=SlaConfig)
    ops: OpsConfig = OpsConfig()
    source: str = "<defaults>"


def load_config(path: Path | None = None) -> Config:
    """Load ``path``; with None, ``./config.toml`` if present, else built-in defaults."""
    if path is None:
        path = DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None
    if path is None:
        return parse_config({}, "<defaults>")
    return parse_config(read_toml(path, "", "config file"), str(path))


def read_toml(path: Path, key: str, what: str) -> dict[str, Any]:
    """Decode a TOML file; a missing or malformed file is a ConfigError at ``key``."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(key, f"{what} {path} not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(key, f"{path}: invalid TOML: {exc}") from exc


def parse_config(data: Mapping[str, Any], source: str = "<string>") -> Config:
    """Validate a decoded TOML document."""
    _reject_unknown(data, "", {f for f in Config.__dataclass_fields__ if f != "source"})
    boxes = data.get("mailboxes", [])
    if not isinstance(boxes, list):
        raise ConfigError("mailboxes", "must be an array of tables ([[mailboxes]])")
    mailboxes = tuple(_mailbox(b, f"mailboxes[{i}]") for i, b in enumerate(boxes))
    names = [m.name for m in mailboxes]
    if len(set(names)) != len(names):
        raise ConfigError("mailboxes", "mailbox names must be unique")
    return Config(
        database=_section(data, "database", DatabaseConfig, {"url": str}),
        mailboxes=mailboxes,
        smtp=_smtp(data),
        storage=_storage(data),
        support=_support(data),
        scheduler=_scheduler(data),
        logging=_logging(data),
        rules=_section(data, "rules", RulesConfig, {"path": _is_nonempty}),
        outbound=_outbound(data),
        agents=_agents(data),
        sla=parse_sla(data.get("sla")),
        ops=_ops(data),
        source=source,
    )


def secret(env_name: str | None, key: str) -> str:
    """Read a secret from the environment variable ``env_name``; ``key`` names the setting."""
    if not env_name:
        raise ConfigError(key, "no password_env configured")
    value = os.environ.get(env_name)
    if value is None:
        raise ConfigError(key, f"environment variable {env_name} is not set")
    return value


# -- sections -----------------------------------------------------------------------------

Checker = Callable[[Any], bool] | type


def _section(data: Mapping[str, Any], name: str, cls: Callable[..., T],
             types: Mapping[str, Checker]) -> T:
    raw = data.get(name, {})
    if not isinstance(raw, dict):
        raise ConfigError(name, "must be a table")
    return cls(**_typed(raw, name, types))


def _typed(raw: Mapping[str, Any], prefix: str, types: Mapping[str, Checker]) -> dict[str, Any]:
    _reject_unknown(raw, prefix, set(types))
    out: dict[str, Any] = {}
    for key, value in raw.items():
        want = types[key]
        ok = isinstance(value, want) if isinstance(want, type) else want(value)
        if isinstance(want, type) and want is int and isinstance(value, bool):
            ok = False
        if not ok:
            label = want.__name__ if isinstance(want, type) else (want.__doc__ or "a valid value")
            raise ConfigError(f"{prefix}.{key}", f"expected {label}, got {value!r}")
        out[key] = tuple(value) if isinstance(value, list) else value
    return out


def _reject_unknown(raw: Mapping[str, Any], prefix: str, known: set[str]) -> None:
    for key in raw:
        if key not in known:
            where = f"{prefix}.{key}" if prefix else key
            raise ConfigError(where, f"unknown key (known: {', '.join(sorted(known))})")


def _is_port(v: Any) -> bool:
    """a port number 1..65535"""
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 65535


def _is_security(v: Any) -> bool:
    """one of ssl, starttls, none"""
    return v in SECURITY_MODES


def _is_positive(v: Any) -> bool:
    """a positive number"""
    return isinstance(v, int | float) and not isinstance(v, bool) and v > 0


def _is_count(v: Any) -> bool:
    """a whole number >= 0"""
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_str_list(v: Any) -> bool:
    """a list of non-empty strings"""
    return isinstance(v, list) and all(isinstance(x, str) and x for x in v)


def _is_nonempty(v: Any) -> bool:
    """a non-empty string"""
    return isinstance(v, str) and bool(v.strip())


MAILBOX_TYPES: dict[str, Checker] = {
    "name": _is_nonempty, "host": _is_nonempty, "port": _is_port, "security": _is_security,
    "username": _is_nonempty, "password_env": _is_nonempty, "folder": _is_nonempty,
    "processed_folder": _is_nonempty, "max_per_run": _is_positive,
    "timeout_seconds": _is_positive,
}


def _mailbox(raw: Any, prefix: str) -> MailboxConfig:
    if not isinstance(raw, dict):
        raise ConfigError(prefix, "must be a table")
    for key in ("name", "host", "port", "security", "username", "password_env"):
        if key not in raw:
            raise ConfigError(f"{prefix}.{key}", "is required")
    box = MailboxConfig(**_typed(raw, prefix, MAILBOX_TYPES))
    _check_plaintext(box.security, box.host, f"{prefix}.security")
    return box


def _smtp(data: Mapping[str, Any]) -> SmtpConfig:
    smtp = _section(data, "smtp", SmtpConfig, {
        "host": _is_nonempty, "port": _is_port, "security": _is_security,
        "username": _is_nonempty, "password_env": _is_nonempty, "from_address": _is_nonempty,
    })
    _check_plaintext(smtp.security, smtp.host, "smtp.security")
    return smtp


def _storage(data: Mapping[str, Any]) -> StorageConfig:
    return _section(data, "storage", StorageConfig,
                    {"attachments_dir": _is_nonempty, "max_message_bytes": _is_positive})


def _support(data: Mapping[str, Any]) -> SupportConfig:
    support = _section(data, "support", SupportConfig, {
        "addresses": _is_str_list, "message_id_domain": _is_nonempty,
        "id_secret_env": _is_nonempty, "authserv_id": _is_nonempty,
        "flood_per_sender_per_hour": _is_positive,
        "flood_per_domain_per_hour": _is_count,
    })
    lowered = tuple(a.strip().lower() for a in support.addresses)
    return dataclasses.replace(support, addresses=lowered)


def _scheduler(data: Mapping[str, Any]) -> SchedulerConfig:
    return _section(data, "scheduler", SchedulerConfig, {
        "poll_interval_seconds": _is_positive, "send_interval_seconds": _is_positive,
        "sla_interval_seconds": _is_positive,
        "retry_base_seconds": _is_positive,
        "retry_max_seconds": _is_positive,
    })


def _logging(data: Mapping[str, Any]) -> LoggingConfig:
    return _section(data, "logging", LoggingConfig, {"level": _is_level})


def _outbound(data: Mapping[str, Any]) -> OutboundConfig:
    raw = data.get("outbound", {})
    if not isinstance(raw, dict):
        raise ConfigError("outbound", "must be a table")
    raw = dict(raw)
    hours = raw.pop("response_hours", None)
    out = _section({"outbound": raw}, "outbound", OutboundConfig, {
        "brand": _is_nonempty, "templates_dir": _is_nonempty,
        "auto_per_recipient_per_hour": _is_positive, "batch_size": _is_positive,
        "max_attempts": _is_positive, "retry_base_seconds": _is_positive,
        "retry_max_seconds": _is_positive, "sending_lease_seconds": _is_positive,
        "suppress_bounced_days": _is_positive})
    if hours is None:
        return out
    if not isinstance(hours, dict) or not all(
            k in ("critical", "high", "normal", "low") and _is_positive(v)
            for k, v in hours.items()):
        raise ConfigError("outbound.response_hours",
                          "expected a table of urgency = hours (critical, high, normal, low)")
    merged = {**dict(out.response_hours), **hours}
    return dataclasses.replace(out, response_hours=tuple(merged.items()))


def _agents(data: Mapping[str, Any]) -> AgentsConfig:
    agents = _section(data, "agents", AgentsConfig, {
        "addresses": _is_str_list, "domains": _is_str_list, "queue_address": _is_nonempty})
    return AgentsConfig(tuple(a.lower() for a in agents.addresses),
                        tuple(d.lower().lstrip("@") for d in agents.domains),
                        agents.queue_address)


def _ops(data: Mapping[str, Any]) -> OpsConfig:
    ops = _section(data, "ops", OpsConfig, {"listen": _is_nonempty})
    if ops.listen is not None:
        host, _, port = ops.listen.rpartition(":")
        if not (_is_loopback(host.strip("[]")) and port.isdigit() and 0 < int(port) < 65536):
            raise ConfigError("ops.listen", f"expected a loopback host:port, got {ops.listen!r}")
    return ops


def _is_level(v: Any) -> bool:
    """one of DEBUG, INFO, WARNING, ERROR"""
    return v in ("DEBUG", "INFO", "WARNING", "ERROR")


def _check_plaintext(security: str, host: str, key: str) -> None:
    """Refuse cleartext credentials to anything but loopback."""
    if security == "none" and not _is_loopback(host):
        raise ConfigError(key, f'"none" is only allowed to a loopback host, not {host!r}')


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
