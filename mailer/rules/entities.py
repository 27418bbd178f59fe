"""Extract what an agent needs from a support mail: txids, order ids, addresses, assets,
networks and amounts, each de-duplicated in order of first appearance.

The text is NFKC-normalised first (full-width digits and colons become ASCII). Precision
beats recall: addresses need a valid checksum (:mod:`mailer.rules.addresses`), a 64-hex after
a private-key or secret label is a secret (:mod:`mailer.rules.secrets`), not a txid; order ids
need an order label; tickers that are also words (TON, LINK, OP) need crypto context.
Normalisation, decided from the labelled corpus:

- txids lower-cased, ``0x`` kept when written; addresses as written (EIP-55 case matters).
- networks are codes: ERC20, TRC20, BEP20 (also BSC, BNB Smart Chain), BEP2, L2 names
  (POLYGON, ARBITRUM, OPTIMISM, BASE ...), AVAXC, LIGHTNING, and a layer-1 chain's ticker
  (Cardano -> ADA, Solana -> SOL). A chain named like its coin counts only next to a network
  word (``network``, ``网络``, ``сеть``, ``red`` ...) or in brackets after a ticker.
- amounts are ``"<number> <CODE>"``, thousands separators dropped, ``.`` as the decimal
  point, digits otherwise as written (``150.00 USD``). A lone ``1.500`` is 1500 when the
  mail's other amounts use decimal commas or its script does (Vietnamese, Spanish,
  Cyrillic ...), else 1.5; a lone ``1,500`` is 1500 unless the amounts use decimal commas.
  Fiat ISO codes make amounts but are not assets.

Speed: codes are found as words and looked up in sets, and case-insensitive patterns run
on a lower-cased copy, each alternation led by literals; ``re.I`` and 150-way alternations
made the scan several times slower on long mails.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, fields

from mailer.rules.addresses import find_addresses, find_txids
from mailer.rules.secrets import find_secrets, lowered

Found = list[tuple[int, str]]


def _words(text: str) -> list[str]:
    """Vocabularies are written as space-separated words, to keep them readable."""
    return text.split()


# fmt: off
STABLE = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI", "USDE", "PYUSD")
TICKERS = frozenset(_words(
    " ".join(STABLE) + " BTC ETH BNB TRX SOL XRP DOGE LTC ADA TON MATIC POL ARB OP DOT AVAX SHIB"
    " LINK WBTC WETH BCH ETC XLM XMR ATOM NEAR APT SUI FIL ICP UNI AAVE PEPE BONK FLOKI INJ TIA"
    " SEI RENDER FET GRT ALGO HBAR VET EOS XTZ KAS STX IMX LDO MKR CRV SAND MANA AXS APE GALA"
    " CAKE SUSHI ENS JUP PYTH WLD ORDI OKB BGB CRO ENA ONDO STRK MNT ZEC DASH KSM RUNE EGLD FTM"
    " CELO TRUMP WIF"))
# Also words (English, a programming language): counted only in a mail that names another
# coin, an address or a network, and only when the words around them are not in capitals.
AMBIGUOUS = frozenset(_words(
    "OP LINK DOT TON NEAR SAND APE CAKE UNI ENS RUNE MANA TRUMP WIF ADA SOL ETC DASH GALA"))
FIAT = frozenset(_words("USD EUR GBP JPY CNY RMB KRW RUB VND HKD TWD SGD AUD CAD CHF INR BRL"
                        " MXN ARS COP CLP PEN TRY UAH KZT PHP IDR THB MYR NGN"))
# Also written in lower case ("350 usdt"): codes that are not words in our languages.
CASELESS = _words("USDT USDC FDUSD BUSD BTC ETH BNB TRX XRP LTC DOGE SHIB WBTC WETH XMR BCH"
                  " USD EUR CNY RMB JPY KRW VND")
AMOUNT_CODES = TICKERS | FIAT | {v for c in CASELESS for v in (c.lower(), c.title())}
QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "BTC", "ETH", "BNB", "USD", "EUR", "TRY")
# Chain names (and tickers) that also mean a coin: a network only next to a network word.
_CHAINS = {
    name.replace("_", " "): code
    for entry in _words(
        "bitcoin|btc=BTC ethereum|eth=ERC20 tron|trx=TRC20 solana|sol=SOL cardano|ada=ADA"
        " toncoin|ton=TON litecoin|ltc=LTC dogecoin|doge=DOGE ripple|xrp|xrpl|xrp_ledger=XRP"
        " polkadot|dot=DOT avalanche|avax=AVAXC bnb=BEP20 matic|pol=POLYGON aptos|apt=APT"
        " sui=SUI cosmos|atom=ATOM stellar|xlm=XLM algorand|algo=ALGO kaspa|kas=KAS"
        " fantom|ftm=FTM mantle|mnt=MANTLE celo=CELO")
    for names, code in [entry.split("=")]
    for name in names.split("|")
}
_B, _E, _LE = r"(?<![0-9A-Za-z])", r"(?![0-9A-Za-z])", r"(?![0-9a-z])"
_NET_NAMES = {  # network code -> how it is written (lower case); names that are only networks
    "ERC20": rf"erc ?-?20{_LE}", "TRC20": rf"trc ?-?20{_LE}", "ZKSYNC": "zksync",
    "BEP20": rf"bep ?-?20{_LE}|bnb smart chain|bnb chain", "POLYGON": rf"polygon(?: pos)?{_LE}",
    "BEP2": rf"bep ?-?2{_LE}|bnb beacon chain", "ARBITRUM": "arbitrum",
    "STARKNET": rf"starknet{_LE}", "LIGHTNING": "lightning network",
    "AVAXC": rf"(?:avax|avalanche) ?c-?chain{_LE}|c-chain|avaxc{_LE}",
}
_CASED_NETWORKS = {"BSC": "BEP20", "Optimism": "OPTIMISM", "OP Mainnet": "OPTIMISM",
                   "Linea": "LINEA", "The Open Network": "TON", "Base": "BASE"}
_ORDER_CJK = (  # what an order is called, then how its number is called
    ("订单 訂單 委托 委託 提币 提幣 提现 提現 充值 充币 充幣 提领 提領 出金 入金 划转 劃轉"
     " 转账 轉帳 跟单 跟單 申请 申請 交易", r" ?(?:单号|單號|编号|編號|号码|號碼|号|號|id)"),
    ("注文 出金 入金 取引 送金 振替 申請 受付 約定", r" ?(?:番号|id|no\.?)"),
    ("주문 출금 입금 거래 신청 이체 송금 체결", r" ?(?:번호|id)"),
)
# fmt: on

_NUM = r"\d{1,3}(?:[,.' ]\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?"
_NUMBER_CODE = re.compile(
    rf"(?=\d)(?<![0-9A-Za-z.,])(?P<num>{_NUM}) ?(?P<code>[A-Za-z]{{2,6}}){_E}"
)
_THEN_NUMBER = re.compile(  # after a code: "USDT 350", not "ETH 2 days" nor "USDT 5月"
    rf" ?:? ?(?P<num>{_NUM})"
    r"(?![0-9A-Za-z/:%年月日号號時时点點分秒個个天週周])(?![.,]\d)(?! ?[A-Za-z])"
)
_PERCENT = re.compile(rf"(?<![0-9A-Za-z.,])(?P<num>{_NUM}) ?%")
_COMMA_SCRIPT = re.compile(
    r"[\u0400-\u04ffñ¿¡ãõçßăđơư]|[ạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]"
)
_UPPER_WORD = re.compile(r"(?<![0-9A-Za-z])[0-9]*[A-Z][A-Z0-9]{1,15}(?![0-9A-Za-z])")
_LOWER_TICKER = re.compile(
    r"(?<![0-9A-Za-z_./@:-])(?:usdt|usdc|btc|eth|bnb|trx|xrp|ltc|doge|Usdt|Btc|Eth)"
    r"(?![0-9A-Za-z_@/-])(?!\.[0-9A-Za-z])"
)
_SHOUT = re.compile(r"[A-Z]{2,}")

_NET_WORD = (
    r"(?:(?:network|mainnet|chain|blockchain)(?![a-z])|网络|網路|網絡|主网|主網|链|鏈|"
    r"ネットワーク|チェーン|네트워크|체인|сеть|сети|сетью|блокчейн|(?i:network|chain))"
)
_CHAIN = "|".join(sorted(_CHAINS, key=len, reverse=True))
_NET_KINDS = tuple((code, re.compile(pattern)) for code, pattern in _NET_NAMES.items())
_NETWORK = re.compile(  # on the lower-cased text
    rf"(?<![0-9a-z])(?:{'|'.join(_NET_NAMES.values())}|(?:{_CHAIN})(?= ?-?{_NET_WORD}))"
)
_NETWORK_LABELLED = re.compile(  # "red Polygon", "сеть TRON", "mạng: BSC"
    r"(?<![a-zа-я])(?:network|red|mạng|сеть|сети|сетью|rede|réseau|网络|網路|ネットワーク|네트워크)"
    rf" ?(?:de |:)? ?(?P<chain>{_CHAIN}){_LE}"
)
# English words too (matched as written), and chains in brackets after a ticker ("USDC
# (Solana)"). "Base" only mid-sentence, in brackets or before a network word.
_NETWORK_CASED = re.compile(
    r"BSC(?<![0-9A-Za-z]BSC)(?![0-9A-Za-z])|Optimism(?<![0-9A-Za-z]Optimism)(?![0-9A-Za-z])|"
    r"OP Mainnet|Linea(?<![0-9A-Za-z]Linea)(?![0-9A-Za-z])|The Open Network|"
    rf"Base(?<![0-9A-Za-z]Base)(?= ?{_NET_WORD})|Base(?<=[a-z(:] Base)(?![0-9A-Za-z])|"
    r"Base(?<=[(:]Base)(?![0-9A-Za-z])|\((?:(?<=[A-Z]\()|(?<=[A-Z] \())[A-Za-z][A-Za-z ]{1,12}\)"
)

_ORDER_LABEL_WORDS = re.compile(  # on the lower-cased text; Latin and Cyrillic start a word
    r"(?<![a-zа-я])(?:"
    r"(?:order|withdrawal|withdraw|deposit|transfer|trade|position|payment|refund|request|"
    r"application|bot|reference|transaction)s? ?(?:ids?|no\.?|number|num|#)(?![a-z])|"
    r"(?:order|reference|ref\.?)(?![a-z])|"
    r"(?:номер|№|id) (?:ордера|заказа|заявки|вывода|транзакции|сделки|перевода|операции)|"
    r"(?:ордер|заявка|заказ)(?: ?(?:№|#|номер))?|"
    r"(?:id|n[úu]mero|n[º°o]\.?|nro\.?) (?:de (?:la )?|del )?(?:orden|pedido|retiro|"
    r"dep[óo]sito|transacci[óo]n|solicitud|operaci[óo]n)|"
    r"referencia(?: del? (?:retiro|dep[óo]sito|pedido|orden|operaci[óo]n))?(?![a-z])|"
    r"(?:orden|pedido)(?![a-z])|"
    r"(?:mã|số|id) ?(?:lệnh|đơn(?: hàng)?|giao dịch|rút tiền|yêu cầu|nạp tiền)|"
    r"(?:id|n[úu]mero) d[oa] (?:pedido|ordem|saque|dep[óo]sito))"
)
_ORDER_LABEL_CJK = re.compile(  # every alternative led by a literal: the scan skips ahead
    "|".join(f"{p}{number}" for words, number in _ORDER_CJK for p in words.split())
    + "|订单|訂單|单号|單號|注文|주문"
)
_ORDER_ID = re.compile(
    r"[ \t]*(?:[:#№=-]|is|es|là|是|为|為|は|는|은)?[ \t]*#?[ \t]*"
    rf"(?P<id>(?=[0-9A-Za-z-]*\d)[0-9A-Za-z][0-9A-Za-z-]{{5,39}}){_E}"
)
_ORDER_MORE = re.compile(r"[ \t]*(?:,|、|/|&|and|и|y|và|和|及)[ \t]*#?[ \t]*")
_CODE_AFTER = re.compile(rf" ?(?P<code>[A-Za-z]{{2,6}}){_E}")
_NOT_ORDER = re.compile(r"^(?:0x|T-\d)|^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class Entities:
    """What one mail mentions; each field de-duplicated, in order of first appearance."""

    txids: tuple[str, ...] = ()
    order_ids: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    assets: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    amounts: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, list[str]]:
        """Field name -> values, for JSON columns and rule facts."""
        return {f.name: list(getattr(self, f.name)) for f in fields(self)}


def extract_entities(text: str) -> Entities:
    """Every entity in ``text`` (a subject and/or body)."""
    text = unicodedata.normalize("NFKC", text)
    secrets = [(s.start, s.end) for s in find_secrets(text)]
    addresses = list(find_addresses(text))
    txids = [(p, t) for p, t in find_txids(text) if not _overlaps((p, p + len(t)), secrets)]
    taken = secrets + [(p, p + len(v)) for p, v in addresses + txids]
    amounts, networks = _amounts(text), _networks(text)
    context = bool(addresses or txids or networks)  # for tickers that are also words
    return Entities(
        txids=_ordered(txids),
        order_ids=_ordered(_order_ids(text, taken)),
        addresses=_ordered(addresses, lower=True),
        assets=_ordered(_assets(text, amounts, context)),
        networks=_ordered(networks),
        amounts=_ordered([(p, f"{n} {c}") for p, n, c in amounts]),
    )


def _ordered(found: Found, *, lower: bool = False) -> tuple[str, ...]:
    """Values sorted by position, the first spelling of each kept."""
    seen: dict[str, str] = {}
    for _, value in sorted(found):
        seen.setdefault(value.lower() if lower else value, value)
    return tuple(seen.values())


def _overlaps(span: tuple[int, int], others: list[tuple[int, int]]) -> bool:
    return any(start < span[1] and span[0] < end for start, end in others)


# -- amounts -----------------------------------------------------------------------------------


def _amounts(text: str) -> list[tuple[int, str, str]]:
    """``(offset, number, CODE)`` with the number normalised."""
    raw = [(m.start(), m["num"], m["code"]) for m in _NUMBER_CODE.finditer(text)]
    raw = [found for found in raw if found[2] in AMOUNT_CODES]
    taken = [(p, p + len(n)) for p, n, _ in raw]
    for code in _UPPER_WORD.finditer(text):
        then = _THEN_NUMBER.match(text, code.end()) if code.group() in AMOUNT_CODES else None
        if then is not None and not _overlaps(then.span("num"), taken):
            raw.append((code.start(), then["num"], code.group()))
    habit = _decimal_habit(text, [n for _, n, _ in raw])
    return [(p, _number(n, habit), c.upper()) for p, n, c in raw]


def _decimal_habit(text: str, numbers: list[str]) -> str:
    """How this mail writes decimals: ``","``/``"."`` if its amounts show it unambiguously,
    ``"script"`` if it is written in a comma-decimal script, else ``""``."""
    numbers = numbers + [m["num"] for m in _PERCENT.finditer(text)]
    votes = [_separator_vote(n.replace(" ", "").replace("'", "")) for n in numbers]
    if any(votes):
        return "," if votes.count(",") > votes.count(".") else "."
    return "script" if len(_COMMA_SCRIPT.findall(text, 0, 4000)) >= 3 else ""


def _separator_vote(number: str) -> str:
    """``","`` or ``"."`` if ``number`` shows its decimal mark unambiguously, else ``""``."""
    marks = [c for c in number if c in ",."]
    if len(set(marks)) == 2:
        return marks[-1]
    if len(marks) != 1:
        return ""
    whole, frac = re.split(r"[.,]", number)
    return marks[0] if len(frac) != 3 or whole == "0" else ""


def _number(raw: str, habit: str) -> str:
    """``1.250,50`` -> ``1250.50``; ``0,5`` -> ``0.5``; a lone 3-digit group by ``habit``."""
    number = raw.replace(" ", "").replace("'", "")
    marks = [c for c in number if c in ",."]
    decimal = _separator_vote(number)
    if not decimal and len(marks) == 1:
        # "1,500" is a thousand and a half only where commas are decimal marks; "1.500" is
        # 1500 wherever dots group thousands (the mail's other amounts, or its language).
        comma_decimal = habit == "," if marks[0] == "," else habit in ("", ".")
        decimal = marks[0] if comma_decimal else ""
    whole, _, frac = number.rpartition(decimal) if decimal else (number, "", "")
    whole = whole.replace(",", "").replace(".", "")
    return f"{whole}.{frac}" if decimal else whole


# -- assets and networks -----------------------------------------------------------------------


def _assets(text: str, amounts: list[tuple[int, str, str]], context: bool) -> Found:
    found = [(p, c) for p, _, c in amounts if c not in FIAT]
    found += [(m.start(), m.group().upper()) for m in _LOWER_TICKER.finditer(text)]
    ambiguous = []
    for m in _UPPER_WORD.finditer(text):
        word = m.group()
        if word in AMBIGUOUS:
            ambiguous += [(m.start(), word)] if not _shouting(text, *m.span()) else []
        elif word in TICKERS:
            found.append((m.start(), word))
        else:
            found += [(m.start() + i, code) for i, code in _split_pair(word)]
    return found + ambiguous if found or context else found


def _split_pair(word: str) -> list[tuple[int, str]]:
    """``BTCUSDT`` -> BTC, USDT (fiat quotes dropped); an unknown base only before a stablecoin."""
    for quote in QUOTES:
        if not word.endswith(quote) or len(word) - len(quote) < 2:
            continue
        base = word[: -len(quote)]
        bare = base.lstrip("0123456789")  # 1000PEPEUSDT: contracts of 1000 PEPE
        base = bare if bare in TICKERS else base
        if base in TICKERS or quote in STABLE:
            pair = [(0, base)] if base not in FIAT else []
            return pair + ([(len(word) - len(quote), quote)] if quote not in FIAT else [])
    return []


def _shouting(text: str, start: int, end: int) -> bool:
    """Whether the words next to ``text[start:end]`` are capitals ("A TON OF", "THE LINK")."""
    before = re.findall(r"[A-Za-z]+", text[max(0, start - 20) : start].split("\n")[-1])[-1:]
    after = re.findall(r"[A-Za-z]+", text[end : end + 20].split("\n")[0])[:1]
    return any(_SHOUT.fullmatch(w) and w not in TICKERS for w in before + after)


def _networks(text: str) -> Found:
    low = lowered(text)
    found = [(m.start(), _network_code(low, m)) for m in _NETWORK.finditer(low)]
    found += [(m.start(), _CHAINS[m["chain"]]) for m in _NETWORK_LABELLED.finditer(low)]
    for m in _NETWORK_CASED.finditer(text):
        word = m.group()
        if word[0] != "(":
            found.append((m.start(), _CASED_NETWORKS[word]))
        elif word[1:-1].lower() in _CHAINS:
            found.append((m.start(), _CHAINS[word[1:-1].lower()]))
        else:  # "(BSC)", "(Arbitrum One)": whatever the other patterns make of the inside
            found += [(m.start() + 1 + p, code) for p, code in _networks(word[1:-1])]
    return found


def _network_code(low: str, match: re.Match[str]) -> str:
    for code, pattern in _NET_KINDS:
        named = pattern.match(low, match.start())
        if named is not None and named.end() == match.end():
            return code
    return _CHAINS[match.group()]


# -- order ids -----------------------------------------------------------------------------------


def _order_ids(text: str, taken: list[tuple[int, int]]) -> Found:
    found: Found = []
    low = lowered(text)
    for label in [*_ORDER_LABEL_WORDS.finditer(low), *_ORDER_LABEL_CJK.finditer(low)]:
        pos = label.end()
        while (m := _ORDER_ID.match(text, pos)) is not None and _is_order_id(text, m, taken):
            found.append((m.start("id"), m["id"]))
            more = _ORDER_MORE.match(text, m.end())
            if more is None or more.end() == m.end():
                break
            pos = more.end()
    return found


def _is_order_id(text: str, match: re.Match[str], taken: list[tuple[int, int]]) -> bool:
    value = match["id"]
    if sum(c.isdigit() for c in value) < 3 or _NOT_ORDER.search(value):
        return False
    if _overlaps(match.span("id"), taken):
        return False
    code = _CODE_AFTER.match(text, match.end())
    return code is None or code["code"] not in AMOUNT_CODES
