"""Secret redaction: BIP-39 mnemonics, private keys, passwords, API secrets, 2FA backup
codes; no redaction of ordinary text; the labelled corpus redacted exactly where it should be."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from mnemonic import Mnemonic

from bench.entities_eval import check_secrets
from mailer.corpus import load_labels
from mailer.ingest.parse import parse_mail
from mailer.rules.addresses import bip39_index, mnemonic_checksum_ok
from mailer.rules.secrets import find_secrets, is_critical, redact

M = Mnemonic("english")
SEED_12 = M.to_mnemonic(bytes(range(16)))
SEED_24 = M.to_mnemonic(bytes(range(100, 132)))
# BIP-39 reference vectors (trezor/python-mnemonic vectors.json).
VECTORS = (
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
    "legal winner thank year wave sausage worth useful legal winner thank yellow",
    "letter advice cage absurd amount doctor acoustic avoid letter advice cage above",
    " ".join(["zoo"] * 23 + ["vote"]),
)
BAD_CHECKSUM = " ".join(["abandon"] * 12)  # the valid 12th word would be "about"
WIF = "5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ"
WIF_COMPRESSED = "KwdMAjGmerYanjeui5SHS7JkmpZvVipYvB2LJGU1ZxJwYvP98617"
XPRV = (
    "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TG"
    "tRBeJgk33yuGBxrMPHi"
)
KEY_HEX = hashlib.sha256(b"key").hexdigest()


def test_own_checksum_agrees_with_the_mnemonic_package():
    index = bip39_index()
    for phrase in [*VECTORS, SEED_12, SEED_24, BAD_CHECKSUM, *(M.generate(128) for _ in range(20))]:
        assert mnemonic_checksum_ok([index[w] for w in phrase.split()]) == M.check(phrase)


@pytest.mark.parametrize("phrase", [*VECTORS, SEED_12, SEED_24, M.generate(256)])
def test_valid_mnemonic_inside_a_sentence_is_redacted(phrase):
    result = redact(f"My seed is {phrase} and then everything was gone.")
    assert result.text == "My seed is [REDACTED: mnemonic] and then everything was gone."
    assert result.kinds == ("mnemonic",)


@pytest.mark.parametrize(
    "layout",
    [
        lambda words: "\n".join(f"{i}. {w}" for i, w in enumerate(words, 1)),
        lambda words: " ".join(f"{i}) {w}" for i, w in enumerate(words, 1)),
        lambda words: "\n".join(f"{i}-{w}" for i, w in enumerate(words, 1)),
        lambda words: ", ".join(words),
        lambda words: "\n".join(words),
        lambda words: " ".join(w.upper() for w in words),
        lambda words: " ".join(w.title() for w in words),
        lambda words: "<ol>" + "".join(f"<li>{w}</li>" for w in words) + "</ol>",
    ],
)
def test_mnemonic_layouts(layout):
    text = "Here it is:\n" + layout(SEED_24.split()) + "\nThanks"
    result = redact(text)
    assert result.kinds == ("mnemonic",)
    assert all(w not in result.text.lower() for w in set(SEED_24.split()) - {"here", "it"})
    assert result.text.startswith("Here it is:") and result.text.endswith("Thanks")


def test_a_prose_word_next_to_the_seed_stays():
    # "can" is a BIP-39 word; the seed's window is chosen by style, not swallowed whole.
    result = redact(f"Seed: {SEED_12}\nCan you check it?")
    assert result.text == "Seed: [REDACTED: mnemonic]\nCan you check it?"


def test_two_seeds_back_to_back_are_both_redacted():
    result = redact(f"old: {SEED_24} {SEED_12}")
    assert result.text == "old: [REDACTED: mnemonic] [REDACTED: mnemonic]"


def test_bad_checksum_is_redacted_only_when_labelled_or_numbered():
    assert redact(f"words: {BAD_CHECKSUM} end").kinds == ()
    assert redact(f"my recovery phrase: {BAD_CHECKSUM}").kinds == ("mnemonic",)
    assert redact(f"助记词：{BAD_CHECKSUM}").kinds == ("mnemonic",)
    numbered = " ".join(f"{i}. {w}" for i, w in enumerate(BAD_CHECKSUM.split(), 1))
    assert redact(numbered).kinds == ("mnemonic",)


@pytest.mark.parametrize(
    "text",
    [
        "I can help you with the account access, please review the above and follow the plan.",
        "Please check my account balance, the deposit has been pending since last Monday.",
        "abandon ability able about above absent absorb abstract absurd abuse access",  # 11
        "Staff never request login credentials, authenticator codes, recovery phrases or "
        "private keys.",
        "工作人员不会索取登录密码、验证器动态码、助记词或私钥。",
        "I reset my password yesterday and the password-protected zip still opens.",
        "Password: ********",
        "Your password must have 8 characters. My password is incorrect.",
        "Password: changed yesterday",
        "API key: AbCdEf0123456789AbCdEf0123456789",  # a key is an identifier, not a secret
        f"TxID: {KEY_HEX}",
        "2FA backup codes are lost, I need a reset",
    ],
)
def test_ordinary_text_is_not_redacted(text):
    assert redact(text) == redact(text).__class__(text, ())


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Password: Yuna!2024sky", "Yuna!2024sky"),
        ("비밀번호: Yuna!2024sky", "Yuna!2024sky"),
        ("비밀번호는 Tiger77!입니다", "Tiger77!"),
        ("my password is hunter2024.", "hunter2024"),
        ("密码：Abc123456", "Abc123456"),
        ("密碼是 qwe!@#123", "qwe!@#123"),
        ("パスワードは「sakura2024」です", "sakura2024"),
        ("пароль: Qwerty_2024", "Qwerty_2024"),
        ("contraseña: Madrid2024!", "Madrid2024!"),
        ("mật khẩu: Saigon@123", "Saigon@123"),
        ("Password for my account: Sunflower99", "Sunflower99"),
        ("Password:\nsunflower\n", "sunflower"),
        ("Password:<b>Yuna!2024sky</b>", "Yuna!2024sky"),
    ],
)
def test_passwords_are_redacted_label_kept(text, secret):
    result = redact(text)
    assert result.kinds == ("password",)
    assert secret not in result.text and "[REDACTED: password]" in result.text
    assert result.text.split("[REDACTED")[0] == text.split(secret)[0]


def test_decomposed_vietnamese_label_still_matches():
    result = redact("Mật khẩu: Saigon@123".replace("ậ", "â\u0323"))
    assert result.kinds == ("password",) and "Saigon@123" not in result.text


@pytest.mark.parametrize(
    ("text", "secrets", "kind"),
    [
        ("Secret Key: zYx9876543210ZYXwvutsrq", ["zYx9876543210ZYXwvutsrq"], "api_secret"),
        ("API key and secret: AAAAbbbb11112222CCCC DDDDeeee33334444FFFF",
         ["AAAAbbbb11112222CCCC", "DDDDeeee33334444FFFF"], "api_secret"),
        ("API密钥：Abc123Def456Ghi789Jkl", ["Abc123Def456Ghi789Jkl"], "api_secret"),
        ("passphrase: MyPass#2024", ["MyPass#2024"], "api_secret"),
        ("2FA backup codes: 1234-5678, 2345-6789\n3456-7890",
         ["1234-5678", "2345-6789", "3456-7890"], "2fa_backup_code"),
        ("Google Authenticator backup key: JBSWY3DPEHPK3PXP", ["JBSWY3DPEHPK3PXP"],
         "2fa_backup_code"),
        (f"private key: 0x{KEY_HEX}", [KEY_HEX], "private_key"),
        (f"私钥：{'ab' * 32}", ["ab" * 32], "private_key"),
        (f"here is {WIF} and {WIF_COMPRESSED}", [WIF, WIF_COMPRESSED], "private_key"),
        (f"backup {XPRV}", [XPRV], "private_key"),
        ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----", ["MHcCAQEE"],
         "private_key"),
    ],
)  # fmt: skip
def test_keys_secrets_and_codes(text, secrets, kind):
    result = redact(text)
    assert result.kinds == (kind,)
    assert not any(secret in result.text for secret in secrets)


def test_wif_with_a_broken_checksum_is_left_alone():
    broken = WIF[:-1] + ("K" if WIF[-1] != "K" else "L")
    assert redact(f"here is {broken}").kinds == ()


def test_kinds_in_order_and_critical():
    result = redact(f"password: Abc12345!\nseed: {SEED_12}")
    assert result.kinds == ("password", "mnemonic")
    assert is_critical(result.kinds) and is_critical(["private_key"])
    assert not is_critical(("password", "api_secret", "2fa_backup_code"))


def test_redaction_is_idempotent():
    once = redact(f"私钥：{KEY_HEX}\n비밀번호: Yuna!2024sky\n{SEED_24}")
    assert redact(once.text).kinds == ()


# -- the labelled corpus ---------------------------------------------------------------------


def test_corpus_secrets_redacted_exactly_where_labelled(corpus_dir: Path):
    results = check_secrets(corpus_dir)
    assert [r.file for r in results if r.labelled and not r.kinds] == []
    assert [r.file for r in results if r.kinds and not r.labelled] == []
    assert any(r.labelled for r in results)


def test_corpus_redacted_text_holds_no_secret(corpus_dir: Path):
    for label in load_labels(corpus_dir):
        if label.contains_secret:
            mail = parse_mail((corpus_dir / label.file).read_bytes())
            cleaned = redact(mail.text)
            assert find_secrets(cleaned.text) == [], label.file
            assert "[REDACTED: " in cleaned.text
