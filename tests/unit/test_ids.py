from __future__ import annotations

from mailer.ids import IdSigner
from mailer.ingest.identity import identify, message_id_list, normalize_message_id


def test_own_message_id_round_trips():
    signer = IdSigner(b"k" * 32, "exchange.example")
    mid = signer.make("ack", "T-000123")
    own = signer.verify(mid)
    assert own is not None and (own.kind, own.number) == ("ack", "T-000123")


def test_edited_number_or_other_key_or_domain_fails():
    signer = IdSigner(b"k" * 32, "exchange.example")
    mid = signer.make("ack", "T-000123")
    assert signer.verify(mid.replace("T-000123", "T-000124")) is None
    assert IdSigner(b"j" * 32, "exchange.example").verify(mid) is None
    assert IdSigner(b"k" * 32, "other.example").verify(mid) is None
    assert signer.verify("<ack-T-000123.d@exchange.example>") is None


def test_identity_ignores_trace_headers_but_not_content():
    base = b"From: a@x.test\r\nSubject: hi\r\nMessage-ID: <m1@x.test>\r\n\r\nbody\r\n"
    again = b"Received: from relay\r\nDelivered-To: s@e.x\r\n" + base
    other = base.replace(b"body", b"other body")
    assert identify(base).dedupe_key == identify(again).dedupe_key
    assert identify(base).message_id == identify(other).message_id == "<m1@x.test>"
    assert identify(base).dedupe_key != identify(other).dedupe_key


def test_missing_message_id_gets_a_stable_synthetic_one():
    raw = b"From: a@x.test\nSubject: no id\n\nbody\n"
    first, second = identify(raw), identify(raw)
    assert first.synthetic and first.message_id == second.message_id
    assert first.message_id.endswith("@mailer.invalid>")


def test_message_id_parsing():
    assert normalize_message_id(" \r\n <abc@x> (comment)") == "<abc@x>"
    assert normalize_message_id("abc@x") == "<abc@x>"
    assert normalize_message_id("") is None
    assert message_id_list("<a@x>\r\n <b@x> <a@x>") == ("<a@x>", "<b@x>")
