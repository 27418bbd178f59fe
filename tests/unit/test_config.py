from __future__ import annotations

from pathlib import Path

import pytest

from mailer.config import load_config, parse_config, secret
from mailer.errors import ConfigError

BOX = {"name": "support", "host": "imap.example.com", "port": 993, "security": "ssl",
       "username": "support@exchange.example", "password_env": "IMAP_PW"}


def test_defaults_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(None)
    assert config.database.url == "sqlite:///./var/mailer.db"
    assert config.mailboxes == ()
    assert config.storage.max_message_bytes == 26_214_400


def test_example_config_loads():
    config = load_config(Path(__file__).resolve().parents[2] / "config.example.toml")
    assert config.mailboxes and config.mailboxes[0].security in ("ssl", "starttls", "none")


@pytest.mark.parametrize(("data", "key"), [
    ({"mailboxes": [{**BOX, "port": 0}]}, "mailboxes[0].port"),
    ({"mailboxes": [{**BOX, "port": "993"}]}, "mailboxes[0].port"),
    ({"mailboxes": [{**BOX, "security": "tls"}]}, "mailboxes[0].security"),
    ({"mailboxes": [{**BOX, "security": "none"}]}, "mailboxes[0].security"),
    ({"mailboxes": [BOX, {**BOX, "password": "x"}]}, "mailboxes[1].password"),
    ({"mailboxes": [{k: v for k, v in BOX.items() if k != "host"}]}, "mailboxes[0].host"),
    ({"smtp": {"port": 70000}}, "smtp.port"),
    ({"smtp": {"host": "smtp.example.com", "security": "none"}}, "smtp.security"),
    ({"storage": {"max_message_bytes": -1}}, "storage.max_message_bytes"),
    ({"databse": {}}, "databse"),
])
def test_errors_name_the_key(data, key):
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")


def test_plaintext_allowed_to_loopback():
    config = parse_config({"mailboxes": [{**BOX, "host": "127.0.0.1", "security": "none"}]})
    assert config.mailboxes[0].security == "none"


def test_duplicate_mailbox_names_refused():
    with pytest.raises(ConfigError, match="unique"):
        parse_config({"mailboxes": [BOX, BOX]})


def test_password_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("IMAP_PW", "s3cret")
    assert secret("IMAP_PW", "mailboxes[0].password_env") == "s3cret"
    monkeypatch.delenv("IMAP_PW")
    with pytest.raises(ConfigError, match="IMAP_PW is not set"):
        secret("IMAP_PW", "mailboxes[0].password_env")


def test_invalid_toml_is_a_config_error(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text("[database\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(bad)


def test_example_values_are_the_built_in_defaults():
    example = load_config(Path(__file__).resolve().parents[2] / "config.example.toml")
    defaults = parse_config({})
    for section in ("database", "smtp", "storage", "support", "scheduler", "logging", "rules",
                    "outbound", "agents", "sla", "ops"):
        assert getattr(example, section) == getattr(defaults, section), section


@pytest.mark.parametrize(("sla", "key"), [
    ({"default_policy": "nope"}, "sla.default_policy"),
    ({"reminders": [0]}, "sla.reminders"),
    ({"by_urgency": {"urgent": "standard"}}, "sla.by_urgency.urgent"),
    ({"by_category": {"kyc": "nope"}}, "sla.by_category.kyc"),
    ({"policies": {"p": {"calendar": "nope"}}}, "sla.policies.p.calendar"),
    ({"policies": {"p": {"first_response_hours": -1}}}, "sla.policies.p.first_response_hours"),
    ({"policies": {"p": {"colour": 1}}}, "sla.policies.p.colour"),
    ({"calendars": {"w": {"timezone": "Mars/Base"}}}, "sla.calendars.w.timezone"),
    ({"budget": 1}, "sla.budget"),
])
def test_sla_errors_name_the_key(sla, key):
    with pytest.raises(ConfigError) as info:
        parse_config({"sla": sla})
    assert info.value.key == key


def test_sla_policy_choice_order():
    sla = parse_config({"sla": {
        "policies": {"vip": {"first_response_hours": 2}},
        "by_category": {"kyc": "vip"}}}).sla
    assert sla.choose("critical", "kyc", "low") == "critical"  # the rules' choice first
    assert sla.choose(None, "kyc", "critical") == "vip"        # then by category
    assert sla.choose(None, "api", "high") == "urgent"         # then by urgency
    assert sla.choose(None, "api", "normal") == "standard"     # then the default
    assert sla.policy("vip").target_seconds("first_response") == 7200


@pytest.mark.parametrize("listen", ["0.0.0.0:9108", "10.1.2.3:80", "127.0.0.1", "127.0.0.1:x"])
def test_ops_listen_is_loopback_only(listen):
    with pytest.raises(ConfigError) as info:
        parse_config({"ops": {"listen": listen}})
    assert info.value.key == "ops.listen"
