"""Crypto formats recognised by their shape and checksum: addresses, txids, keys, BIP-39.

Used by :mod:`mailer.rules.entities` (addresses, txids) and :mod:`mailer.rules.secrets`
(WIF and extended private keys, runs of BIP-39 words and their checksum). Precision matters
more than recall: a wrong address on a ticket sends an agent to the wrong explorer page, so
every address format we report has a checksum we verify:

- bech32 / bech32m (BIP-173 / BIP-350) for any human-readable part; for the segwit HRPs
  (``bc``, ``tb``, ``ltc`` ...) the witness version and program length are checked too;
- base58check (double SHA-256) with a 1- or 2-byte version and a 20-byte hash: BTC ``1``/``3``,
  LTC ``L``/``M``, DOGE ``D``, TRON ``T`` ...; XRP ``r...`` with the Ripple alphabet;
- EVM ``0x`` + 40 hex, with the EIP-55 checksum (keccak-256) when written in mixed case;
- TON user-friendly (base64, CRC16-XMODEM) and raw ``0:<64 hex>`` forms.

Formats without a checksum (Solana's bare base58 public keys) are not reported. A txid is
64 hex, bare (BTC style) or after ``0x`` (EVM), lower-cased; the hex of ``0:<hex>`` is a TON
address, not a txid.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from Crypto.Hash import keccak
from mnemonic import Mnemonic

B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_XRP_ALPHABET = "rpshnaf39wBUDNEGHJKLM4PQRST7VWXYZ2bcdeCg65jkm8oFqi1tuvAxyz"
_B58_INDEX = {c: i for i, c in enumerate(B58_ALPHABET)}
_XRP_TO_BTC = str.maketrans(_XRP_ALPHABET, B58_ALPHABET)
_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_INDEX = {c: i for i, c in enumerate(_BECH32_CHARSET)}
_BECH32_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_BECH32_CONST, _BECH32M_CONST = 1, 0x2BC830A3
_SEGWIT_HRPS = frozenset({"bc", "tb", "bcrt", "ltc", "tltc", "rltc"})
# Bech32 strings that are not deposit addresses: Lightning invoices, Nostr keys, age keys.
_NOT_ADDRESS_HRPS = ("ln", "nsec", "npub", "note", "nevent", "nprofile", "naddr", "age")

_EVM = re.compile(r"(?<![0-9A-Za-z])0x[0-9a-fA-F]{40}(?![0-9A-Za-z])")
_BECH32 = re.compile(
    r"(?<![0-9A-Za-z])(?:[a-z][a-z0-9]{0,30}1[ac-hj-np-z02-9]{6,110}"
    r"|[A-Z][A-Z0-9]{0,30}1[AC-HJ-NP-Z02-9]{6,110})(?![0-9A-Za-z])"
)
_BASE58 = re.compile(r"(?<![0-9A-Za-z])[1-9A-HJ-NP-Za-km-z]{25,35}(?![0-9A-Za-z])")
_TON_FRIENDLY = re.compile(
    r"(?<![0-9A-Za-z_+/=-])[EUk0][Qf][0-9A-Za-z_+/-]{46}(?![0-9A-Za-z_+/=-])"
)
_TON_RAW = re.compile(r"(?<![0-9A-Za-z:-])(?:0|-1):[0-9a-fA-F]{64}(?![0-9A-Za-z])")
_TXID = re.compile(r"(?<![0-9A-Za-z])(?:0x)?[0-9a-fA-F]{64}(?![0-9A-Za-z])")
_KEY = re.compile(  # WIF (51-52 characters) and BIP-32 extended private keys (111)
    r"(?<![0-9A-Za-z])(?:[1-9A-HJ-NP-Za-km-z]{51,52}|[xyztuvYZ]prv[1-9A-HJ-NP-Za-km-z]{100,112})"
    r"(?![0-9A-Za-z])"
)
_PEM_KEY = re.compile(
    r"-----BEGIN [A-Z ]{0,20}PRIVATE KEY-----.*?-----END [A-Z ]{0,20}PRIVATE KEY-----", re.S
)
MNEMONIC_LENGTHS = (24, 21, 18, 15, 12)
_DIGIT = re.compile(r"\d")  # the numbering _MNEMONIC_GAP allows between words
# Prose never has a run of more than ~9 list words; a longer run than this (ten 24-word seeds)
# is redacted whole, unchecked: checking its every window cost a minute on a 20 MB mail.
MAX_RUN_WORDS = 240
_WORD = re.compile(r"(?<![0-9A-Za-z])(?<!<)(?<!</)[A-Za-z]+(?![0-9A-Za-z])")  # not <li>
_MNEMONIC_GAP = re.compile(
    r"(?:[\s,;|/•·*\"'()\[\]-]|<br\s*/?>|</?(?:p|div|span|li|ol|ul|td|tr|b|strong)\b[^>]{0,40}>"
    r"|&nbsp;|\d{1,2}[.):-]?){0,40}"
)


def b58decode(text: str) -> bytes | None:
    """Base58 (Bitcoin alphabet) to bytes, or None on a character outside the alphabet."""
    number = 0
    for char in text:
        digit = _B58_INDEX.get(char)
        if digit is None:
            return None
        number = number * 58 + digit
    leading = len(text) - len(text.lstrip("1"))
    return b"\0" * leading + number.to_bytes((number.bit_length() + 7) // 8, "big")


def b58check_payload(text: str) -> bytes | None:
    """The payload of a base58check string whose double-SHA-256 checksum holds, else None."""
    raw = b58decode(text)
    if raw is None or len(raw) < 5:
        return None
    payload, checksum = raw[:-4], raw[-4:]
    if hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] != checksum:
        return None
    return payload


def is_base58_address(text: str) -> bool:
    """A base58check address: a 1- or 2-byte version and a 20-byte hash (BTC, LTC, TRON, XRP)."""
    payload = b58check_payload(text)
    if payload is None and text.startswith("r"):
        payload = b58check_payload(text.translate(_XRP_TO_BTC))
    return payload is not None and len(payload) in (21, 22)


def _polymod(values: list[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(_BECH32_GEN):
            if (top >> i) & 1:
                chk ^= gen
    return chk


def _convert_bits(data: list[int], frombits: int, tobits: int) -> list[int] | None:
    """Regroup bits without padding (BIP-173 ``convertbits(pad=False)``)."""
    acc, bits, out, maxv = 0, 0, [], (1 << tobits) - 1
    for value in data:
        acc, bits = (acc << frombits) | value, bits + frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if bits >= frombits or (acc << (tobits - bits)) & maxv:
        return None
    return out


def is_bech32_address(text: str) -> bool:
    """A bech32/bech32m string with a valid checksum (and a valid witness program if segwit)."""
    lower = text.lower()
    if text not in (lower, text.upper()):
        return False  # BIP-173: mixed case is invalid
    hrp, _, data_part = lower.rpartition("1")
    if not hrp or len(data_part) < 6 or hrp.startswith(_NOT_ADDRESS_HRPS):
        return False
    data = [_BECH32_INDEX[c] for c in data_part]
    const = _polymod([ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp] + data)
    if const not in (_BECH32_CONST, _BECH32M_CONST):
        return False
    if hrp not in _SEGWIT_HRPS:
        return True
    return len(lower) <= 90 and _valid_witness(data[:-6], const)


def _valid_witness(data: list[int], const: int) -> bool:
    if not data or data[0] > 16:
        return False
    program = _convert_bits(data[1:], 5, 8)
    if program is None or not 2 <= len(program) <= 40:
        return False
    if data[0] == 0:
        return const == _BECH32_CONST and len(program) in (20, 32)
    return const == _BECH32M_CONST


def is_evm_address(text: str) -> bool:
    """``0x`` + 40 hex; mixed case must satisfy the EIP-55 checksum."""
    digits = text[2:]
    if digits in (digits.lower(), digits.upper()):
        return True
    digest = keccak.new(digest_bits=256, data=digits.lower().encode()).hexdigest()
    return all(
        c.isupper() == (int(h, 16) >= 8)
        for c, h in zip(digits, digest[:40], strict=True)
        if c.isalpha()
    )


def is_ton_address(text: str) -> bool:
    """A TON user-friendly address: 36 bytes, known flags and workchain, CRC16-XMODEM."""
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except binascii.Error:
        return False
    return (
        len(raw) == 36
        and raw[0] & 0x7F in (0x11, 0x51)
        and raw[1] in (0x00, 0xFF)
        and binascii.crc_hqx(raw[:34], 0) == int.from_bytes(raw[34:], "big")
    )


def find_addresses(text: str) -> Iterator[tuple[int, str]]:
    """``(offset, address)`` for every checksum-valid address in ``text``, unordered."""
    yield from ((m.start(), m.group()) for m in _EVM.finditer(text) if is_evm_address(m.group()))
    yield from ((m.start(), m.group()) for m in _TON_RAW.finditer(text))
    for pattern, valid in (
        (_BECH32, is_bech32_address),
        (_BASE58, is_base58_address),
        (_TON_FRIENDLY, is_ton_address),
    ):
        yield from ((m.start(), m.group()) for m in pattern.finditer(text) if valid(m.group()))


def find_txids(text: str) -> Iterator[tuple[int, str]]:
    """``(offset, txid)`` for every 64-hex that is not part of a raw TON address."""
    ton = [m.span() for m in _TON_RAW.finditer(text)]
    for match in _TXID.finditer(text):
        if not any(start <= match.start() < end for start, end in ton):
            yield match.start(), match.group().lower()


def find_private_keys(text: str) -> Iterator[tuple[int, int]]:
    """Spans of keys recognisable without a label: WIF, ``xprv``-style keys, PEM blocks."""
    for match in _KEY.finditer(text):
        payload = b58check_payload(match.group())
        # WIF: version + 32-byte key (+ 0x01 when compressed); BIP-32 extended key: 78 bytes.
        if payload is not None and (
            len(payload) in (33, 78) or (len(payload) == 34 and payload[-1] == 1)
        ):
            yield match.span()
    yield from (m.span() for m in _PEM_KEY.finditer(text))


@functools.cache
def bip39_index() -> dict[str, int]:
    """English BIP-39 word -> its index (0..2047)."""
    return {word: i for i, word in enumerate(Mnemonic("english").wordlist)}


def mnemonic_checksum_ok(indices: list[int]) -> bool:
    """The BIP-39 checksum of word indices (same result as ``Mnemonic.check``, no list scans)."""
    if len(indices) not in MNEMONIC_LENGTHS:
        return False
    bits = functools.reduce(lambda acc, i: acc << 11 | i, indices, 0)
    cs_bits = len(indices) * 11 // 33
    entropy = (bits >> cs_bits).to_bytes((len(indices) * 11 - cs_bits) // 8, "big")
    return hashlib.sha256(entropy).digest()[0] >> (8 - cs_bits) == bits & ((1 << cs_bits) - 1)


@dataclass(frozen=True, slots=True)
class WordRun:
    """A run of >= 12 BIP-39 words, and what speaks for it being a seed phrase."""

    start: int
    end: int
    checksum_ok: bool  # start..end is covered by checksum-valid windows (or is too long)
    numbered: bool


def find_mnemonics(text: str) -> Iterator[WordRun]:
    """Runs of >= 12 English BIP-39 words joined only by separators or numbering."""
    for run in _word_runs(text):
        pending = [run]  # a work list, not recursion: a hostile run may hold many seeds
        while pending:
            found: list[WordRun] = []
            pending.extend(_split_run(text, pending.pop(), found))
            yield from found


def _split_run(
    text: str, run: list[re.Match[str]], found: list[WordRun]
) -> list[list[re.Match[str]]]:
    """Add the checksum-valid stretches of a run to ``found`` (the whole run, unvalidated,
    if it has none); return the pieces left between them that could still hold a seed."""
    numbered = _DIGIT.search(text, run[0].end(), run[-1].start()) is not None
    if len(run) > MAX_RUN_WORDS:
        found.append(WordRun(run[0].start(), run[-1].end(), True, numbered))
        return []
    groups = _valid_windows(text, run, [bip39_index()[m.group().lower()] for m in run])
    if not groups:
        found.append(WordRun(run[0].start(), run[-1].end(), False, numbered))
        return []
    rest, done = [], 0
    for first, last in groups:
        found.append(WordRun(run[first].start(), run[last].end(), True, numbered))
        rest.append(run[done:first])
        done = last + 1
    rest.append(run[done:])
    return [piece for piece in rest if len(piece) >= 12]


def _word_runs(text: str) -> Iterator[list[re.Match[str]]]:
    """Maximal runs of >= 12 BIP-39 words joined only by separators or numbering."""
    index, run = bip39_index(), list[re.Match[str]]()
    for match in _WORD.finditer(text):
        listed = match.group().lower() in index
        if run and not (listed and _MNEMONIC_GAP.fullmatch(text, run[-1].end(), match.start())):
            if len(run) >= 12:
                yield run
            run = []
        if listed:
            if len(run) > MAX_RUN_WORDS:
                run[-1] = match  # only its ends matter now
            else:
                run.append(match)
    if len(run) >= 12:
        yield run


def _valid_windows(
    text: str, run: list[re.Match[str]], words: list[int]
) -> list[tuple[int, int]]:
    """First and last word of each stretch of the run covered by checksum-valid windows.

    A checksum is 4 to 8 bits, so a prose word next to a seed can make a second window valid
    by chance; the windows whose words and gaps look most like the rest of the run win, and
    every winner of every length is kept (overlapping ones merged). Keeping only the longest
    length let a chance-valid 15-word window across two pasted seeds leave the words of both
    outside it in clear (one pair of 12-word seeds in five).
    """
    valid = [
        (i, size)
        for size in MNEMONIC_LENGTHS
        for i in range(len(words) - size + 1)
        if mnemonic_checksum_ok(words[i : i + size])
    ]
    if not valid:
        return []
    style, gap = _odd_ones(text, run)
    cost = {(i, n): sum(style[i : i + n]) + sum(gap[i + 1 : i + n]) for i, n in valid}
    cheapest = min(cost.values())
    groups: list[tuple[int, int]] = []
    for i, size in sorted(w for w in valid if cost[w] == cheapest):
        if groups and i <= groups[-1][1]:
            groups[-1] = (groups[-1][0], max(groups[-1][1], i + size - 1))
        else:
            groups.append((i, i + size - 1))
    return groups


def _odd_ones(text: str, run: list[re.Match[str]]) -> tuple[list[int], list[int]]:
    """Per word: whether its case style, and the line break before it, differ from the run's."""
    styles = ["t" if m.group().istitle() else "u" if m.group().isupper() else "l" for m in run]
    breaks = [False] + ["\n" in text[a.end() : b.start()] for a, b in itertools.pairwise(run)]
    usual_style = max(set(styles), key=styles.count)
    usual_break = breaks.count(True) * 2 > len(breaks) - 1
    return [int(s != usual_style) for s in styles], [int(b != usual_break) for b in breaks]
