"""Entity extraction: checksummed address formats, txids, order ids, assets, networks,
amounts, and the per-field precision/recall on the labelled corpus."""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path

import pytest

from bench.entities_eval import FIELDS, score_entities
from mailer.rules.addresses import (
    B58_ALPHABET,
    is_base58_address,
    is_bech32_address,
    is_evm_address,
    is_ton_address,
)
from mailer.rules.entities import Entities, extract_entities

HASH_A = "d8b5c5353a82c80a75904a23fdfa494f45ad0b35e93202f99c7ea2b1c3e195fe"
HASH_B = "0x94266788d30c052f4658bcd76ab6336ab2d992b6c90fe490a8f76639e47bf302"
EVM_LOWER = "0x0fc4c33b0249f01b1f5531bc5cebeeb37db3adb8"
EIP55_VALID = (
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
)


def b58check(version: bytes, payload: bytes) -> str:
    """An independent base58check encoder, to make addresses the decoder never saw."""
    raw = version + payload
    raw += hashlib.sha256(hashlib.sha256(raw).digest()).digest()[:4]
    number, out = int.from_bytes(raw, "big"), ""
    while number:
        number, digit = divmod(number, 58)
        out = B58_ALPHABET[digit] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def ton_friendly(flag: int, workchain: int, account: bytes) -> str:
    body = bytes([flag, workchain]) + account
    crc = binascii.crc_hqx(body, 0).to_bytes(2, "big")
    return base64.urlsafe_b64encode(body + crc).decode()


def flip(text: str, index: int) -> str:
    """``text`` with one character changed to another of the same class."""
    char = text[index]
    swap = {"q": "p", "p": "q", "A": "B", "B": "A", "a": "b", "b": "a", "1": "2", "2": "1"}
    replacement = swap.get(char, "3" if char != "3" else "4")
    return text[:index] + replacement + text[index + 1 :]


def only(text: str, field: str) -> list[str]:
    return extract_entities(text).as_dict()[field]


# -- address formats -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4",  # BIP-173/350 P2WPKH, upper case
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
        "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",  # P2WSH
        "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",  # bech32m
        "ltc1qwrfp637ysvefsrgppttykt6vz5frnfty7yq53l",
    ],
)
def test_valid_bech32_and_bech32m_addresses_are_found(address):
    assert is_bech32_address(address)
    assert only(f"send to {address} please", "addresses") == [address]


@pytest.mark.parametrize(
    "address",
    [
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",  # last checksum character changed
        # witness v1 with a bech32 (not bech32m) checksum: valid before BIP-350, not now
        "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7k7grplx",
        "bc1qW508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",  # mixed case
    ],
)
def test_invalid_bech32_is_not_an_address(address):
    assert not is_bech32_address(address)
    assert only(f"send to {address} please", "addresses") == []


@pytest.mark.parametrize(
    ("version", "first"), [(b"\x00", "1"), (b"\x05", "3"), (b"\x41", "T"), (b"\x1e", "D")]
)
def test_base58check_addresses_validate_and_a_changed_character_does_not(version, first):
    address = b58check(version, hashlib.sha256(first.encode()).digest()[:20])
    assert address.startswith(first) and is_base58_address(address)
    assert only(f"地址：{address}。", "addresses") == [address]
    broken = flip(address, 10)
    assert not is_base58_address(broken)
    assert only(f"address {broken}", "addresses") == []


def test_known_base58_and_xrp_addresses():
    for address in ("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
                    "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh"):  # fmt: skip
        assert is_base58_address(address), address


@pytest.mark.parametrize("address", EIP55_VALID)
def test_eip55_mixed_case_must_match_the_checksum(address):
    assert is_evm_address(address)
    assert only(address, "addresses") == [address]
    last_letter = max(i for i, c in enumerate(address) if c.isalpha() and i > 1)
    wrong = address[:last_letter] + address[last_letter].swapcase() + address[last_letter + 1 :]
    assert not is_evm_address(wrong)
    assert only(wrong, "addresses") == []


def test_evm_all_lower_or_all_upper_is_accepted():
    upper = "0x" + EVM_LOWER[2:].upper()
    assert only(f"{EVM_LOWER} and {upper}", "addresses") == [EVM_LOWER]  # one address, twice


def test_ton_user_friendly_and_raw_addresses():
    account = hashlib.sha256(b"ton").digest()
    friendly = ton_friendly(0x11, 0, account)
    assert is_ton_address(friendly)
    assert is_ton_address("EQCD39VS5jcptHL8vMjEXrzGaRcCVYto7HUn4bpAOg8xqB2N")
    assert not is_ton_address(flip(friendly, 20))
    raw = "0:" + account.hex()
    found = extract_entities(f"TON to {friendly} or {raw}")
    assert found.addresses == (friendly, raw)
    assert found.txids == ()  # the hex of a raw address is not a transaction


# -- txid, address or key --------------------------------------------------------------------


def test_64_hex_is_a_txid_never_an_address_and_40_hex_inside_it_is_not_an_address():
    found = extract_entities(f"TxID: {HASH_A}\nHash: {HASH_B.upper().replace('0X', '0x')}")
    assert found.txids == (HASH_A, HASH_B)  # lower-cased, 0x kept
    assert found.addresses == ()


def test_txid_and_address_side_by_side():
    found = extract_entities(f"hash {HASH_B} to {EIP55_VALID[0]}")
    assert (found.txids, found.addresses) == ((HASH_B,), (EIP55_VALID[0],))


@pytest.mark.parametrize(
    "label", ["private key:", "私钥：", "私鑰:", "秘密鍵：", "개인키:", "приватный ключ:",
              "clave privada:", "khóa riêng:", "Private key:\n"],
)  # fmt: skip
def test_a_labelled_private_key_is_not_a_txid(label):
    key = hashlib.sha256(label.encode()).hexdigest()
    found = extract_entities(f"{label} {key}\nTxID: {HASH_A}")
    assert found.txids == (HASH_A,)


# -- amounts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("sent 350 USDT", "350 USDT"),
        ("USDT 350 to me", None),  # code first, then a word: not an amount
        ("fee: USDT 350.", "350 USDT"),
        ("350USDT", "350 USDT"),
        ("350 usdt", "350 USDT"),
        ("1,250.50 USDT", "1250.50 USDT"),
        ("1.250,50 USDT", "1250.50 USDT"),
        ("0,5 BTC", "0.5 BTC"),
        ("0.500 BTC", "0.500 BTC"),
        ("6 200 USDT", "6200 USDT"),
        ("３５０ USDT", "350 USDT"),
        ("150.00 USD", "150.00 USD"),
        ("9,000 USDT", "9000 USDT"),
        ("1.500 ETH in an English mail", "1.500 ETH"),
        ("Lệnh rút 1.500 USDT của tôi bị từ chối", "1500 USDT"),
        ("Retiré 2.000 USDT y 0,4 ETH", "2000 USDT"),
        ("ETH 2 days ago", None),
        ("10 AM", None),
    ],
)
def test_amount_normalisation(text, amount):
    amounts = only(text, "amounts")
    assert (amounts[0] if amounts else None) == amount


def test_amounts_keep_order_and_dedupe():
    assert only("800 USDT, fee 8 USDT, again 800 USDT", "amounts") == ["800 USDT", "8 USDT"]


# -- assets and networks -----------------------------------------------------------------------


def test_assets_from_tickers_pairs_and_amounts_but_not_fiat_or_networks():
    text = "BTCUSDT perp, ETH/USDC, 5 SOL, 150 USD via ERC20"
    assert only(text, "assets") == ["BTC", "USDT", "ETH", "USDC", "SOL"]


def test_ambiguous_tickers_need_crypto_context_and_no_shouting():
    assert only("A TON OF PEOPLE CLICK THE LINK", "assets") == []
    assert only("I hold TON and LINK", "assets") == []  # nothing else says crypto
    assert only("I hold TON and LINK and 5 ETH", "assets") == ["TON", "LINK", "ETH"]


@pytest.mark.parametrize(
    ("text", "networks"),
    [
        ("USDT (TRC20)", ["TRC20"]),
        ("via ERC-20 and BEP20", ["ERC20", "BEP20"]),
        ("on BSC / BNB Smart Chain", ["BEP20"]),
        ("Polygon网络", ["POLYGON"]),
        ("Arbitrum Oneネットワーク", ["ARBITRUM"]),
        ("the Optimism network, but my wallet only supports Base.", ["OPTIMISM", "BASE"]),
        ("on the Cardano network", ["ADA"]),
        ("por la red Solana", ["SOL"]),
        ("USDC (Solana)", ["SOL"]),
        ("I bought Solana and Bitcoin", []),  # coin names, not networks
        ("Base fee was high", []),
        ("ERC20 is a standard", ["ERC20"]),
    ],
)
def test_network_codes(text, networks):
    assert only(text, "networks") == networks


def test_erc20_is_a_network_not_an_asset():
    assert only("USDT-ERC20", "assets") == ["USDT"]


# -- order ids -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "order ID: 1131681753203728003",
        "(order 1131681753203728003)",
        "Order #1131681753203728003",
        "订单号：1131681753203728003",
        "訂單編號 1131681753203728003",
        "注文番号：1131681753203728003",
        "주문번호 1131681753203728003입니다",
        "Номер ордера: 1131681753203728003",
        "ID de orden: 1131681753203728003",
        "Mã lệnh: 1131681753203728003",
        "提币单号：1131681753203728003",
        "Request ID: 1131681753203728003",
    ],
)
def test_labelled_order_ids_in_every_language(text):
    assert only(text, "order_ids") == ["1131681753203728003"]


def test_alphanumeric_and_listed_order_ids():
    assert only("order IDs: W20240521123456, W20240521654321", "order_ids") == [
        "W20240521123456",
        "W20240521654321",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "UID: 12345678",
        "call me on 13812345678",
        "in order to verify 2024-05-21",
        "order 12345",  # too short
        "order 1000000 USDT",  # an amount
        f"order {HASH_A}",  # a hash
    ],
)
def test_no_order_id_without_an_order_label_or_with_a_non_id(text):
    assert only(text, "order_ids") == []


def test_as_dict_has_every_field():
    assert list(Entities().as_dict()) == list(FIELDS)


# -- the labelled corpus ---------------------------------------------------------------------


def test_corpus_precision_and_recall_per_field(corpus_dir: Path):
    scores = score_entities(corpus_dir)
    for name, score in scores.items():
        assert score.precision >= 0.95, (name, score.errors)
        assert score.recall >= 0.90, (name, score.errors)
