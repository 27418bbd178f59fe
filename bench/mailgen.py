"""Deterministic generator of realistic raw support mails for the benchmarks.

``generate(n, seed)`` returns ``n`` mails (bytes, CRLF line ends) that look like what a
crypto exchange's support desk receives: short customer texts about deposits, withdrawals
and frozen accounts in Simplified and Traditional Chinese, English, Japanese, Korean,
Russian, Spanish and Vietnamese, with TxIDs, addresses and amounts; in the charsets and
transfer encodings real clients use (UTF-8 base64/quoted-printable, GBK/GB18030 also as raw
8-bit, Big5, Shift_JIS, ISO-2022-JP, EUC-KR/CP949, KOI8-R, windows-1251, windows-1258 ...),
RFC 2047 encoded subjects and names, ``multipart/alternative`` with HTML, about 15 % with a
small attachment, about 10 % replies (In-Reply-To an earlier mail, ``Re:`` subject, quoted
history), and a few auto-replies and list mails. Every Message-ID is unique.

The same ``(n, seed)`` always gives the same bytes. Built with the stdlib ``email`` package
(compat32 objects, which serialise fast).
"""

from __future__ import annotations

import argparse
import base64
import html
import quopri
import random
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email import policy as email_policy
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.utils import format_datetime
from pathlib import Path

SUPPORT = "support@exchange.example"
WIRE = email_policy.compat32.clone(linesep="\r\n")
BASE_TIME = datetime(2024, 3, 1, 0, 0, tzinfo=UTC)
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
# Circumflex, breve and horn are part of the letter in windows-1258 (â ă ơ ...); the five
# tone marks are written as combining characters after it.
_VI_SHAPE_MARKS = "\u0302\u0306\u031b"

# -- texts --------------------------------------------------------------------------------
# Placeholders: {amount} {coin} {net} {txid} {addr} {uid} {order} {date}.


@dataclass(frozen=True, slots=True)
class Lang:
    """Texts and habits of one language's senders."""

    code: str
    weight: int
    tz_hours: float
    subjects: tuple[str, ...]
    bodies: tuple[str, ...]
    followups: tuple[str, ...]
    reply_prefix: tuple[str, ...]
    attribution: str
    auto_subject: str
    auto_body: str
    signatures: tuple[str, ...]
    names: tuple[str, ...]
    domains: tuple[str, ...]
    # (charset label, Python codec, transfer encoding, weight)
    encodings: tuple[tuple[str, str, str, int], ...]


LANGS: tuple[Lang, ...] = (
    Lang(
        "zh-CN", 30, 8,
        ("充值未到账", "提现一直处于审核中", "账户被冻结，请帮忙处理",
         "{coin} 充值没有到账，急！", "提币失败，资金去哪了？", "充错网络了，能找回吗"),
        ("您好，\n\n我在 {date} 从外部钱包向我的账户充值了 {amount} {coin}（{net} 网络），"
         "区块链浏览器上已经显示成功，但是账户余额一直没有变化。\n\nTxID: {txid}\n"
         "充值地址: {addr}\n用户ID: {uid}\n\n麻烦尽快帮我查一下，谢谢！",
         "客服你好，\n\n我昨天提交的提现申请（{amount} {coin}）到现在还是“审核中”状态，"
         "已经超过24小时了。订单号 {order}，提现地址 {addr}。\n请问什么时候能到账？"
         "我急用这笔钱。",
         "你好，\n\n我的账户今天突然被冻结了，登录后提示“账户存在风险，已暂停交易和提现”。"
         "我没有做任何违规操作，请告诉我需要提供什么资料才能解冻。\n\nUID：{uid}",
         "您好，我充错了网络，把 {amount} {coin} 通过 {net} 转到了你们的地址 {addr}，"
         "请问能找回吗？\n交易哈希：{txid}\n用户ID：{uid}",
         "提币 {amount} {coin} 显示已完成，但是对方钱包没有收到。\nTxID：{txid}\n"
         "接收地址：{addr}\n请帮忙确认一下是否已经广播上链。"),
        ("请问有进展吗？已经过去两天了。", "补充一下：我已经把截图发给你们了，请查收。",
         "还是没有到账，麻烦再帮我催一下。", "谢谢，已经收到了。"),
        ("回复：", "Re: ", "答复: "),
        "在 {date}，{name} <{email}> 写道：",
        "自动回复：{subject}", "您好，我现在休假中，{date} 之后回来，邮件会在回来后处理。",
        ("\n\n发自我的iPhone", "\n\n-- \n来自网易邮箱大师", ""),
        ("张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄丽", "周杰", "吴敏"),
        ("qq.com", "163.com", "126.com", "gmail.com", "foxmail.com", "sina.com"),
        (("utf-8", "utf-8", "base64", 4), ("gb18030", "gb18030", "base64", 2),
         ("gbk", "gbk", "base64", 2), ("gb2312", "gbk", "base64", 1),
         ("gbk", "gbk", "8bit", 1)),
    ),
    Lang(
        "zh-TW", 8, 8,
        ("入金未到帳", "出金申請一直沒有處理", "帳戶被凍結了", "提幣失敗，請協助查詢"),
        ("您好：\n\n我於 {date} 轉入 {amount} {coin}（{net}），區塊鏈上已經確認，"
         "但是帳戶餘額沒有增加。\n\n交易雜湊：{txid}\n入金地址：{addr}\n會員編號：{uid}\n\n"
         "請協助查詢，謝謝。",
         "客服您好，\n\n我申請的出金 {amount} {coin} 已經兩天了還沒有到帳，狀態顯示「處理中」。"
         "訂單編號 {order}，麻煩幫我確認一下。",
         "你好，我的帳戶被凍結了，無法登入也無法提領。我沒有違反任何規定，"
         "請問要如何解除凍結？\n會員編號 {uid}。"),
        ("請問處理得如何了？", "補充資料如附件，請查收。", "已經收到，謝謝。"),
        ("回覆：", "Re: "),
        "{name} <{email}> 於 {date} 寫道：",
        "自動回覆：{subject}", "您好，我目前休假中，將於 {date} 後回覆您的郵件。",
        ("\n\n從我的 iPhone 傳送", ""),
        ("陳志明", "林美玲", "黃建宏", "張淑芬", "李俊傑"),
        ("gmail.com", "yahoo.com.tw", "hotmail.com", "hinet.net"),
        (("big5", "big5", "base64", 3), ("utf-8", "utf-8", "base64", 2),
         ("big5", "big5", "8bit", 1)),
    ),
    Lang(
        "en", 20, -5,
        ("Deposit not credited", "Withdrawal stuck in pending", "Account frozen - please help",
         "Missing {coin} deposit", "URGENT: withdrawal not received",
         "Wrong network deposit"),
        ("Hi,\n\nI sent {amount} {coin} on {net} to my deposit address {addr} on {date}. The "
         "transaction has enough confirmations on the explorer but my balance still shows 0."
         "\n\nTxID: {txid}\nUID: {uid}\n\nPlease credit it as soon as possible.\n\nThanks",
         "Hello support,\n\nmy withdrawal of {amount} {coin} (order {order}) has been pending "
         "for 2 days. The destination address is {addr}. Could you tell me what is going on?",
         "My account was frozen this morning and I can't trade or withdraw. I haven't done "
         "anything wrong. What do you need from me to unlock it?\n\nUID {uid}",
         "Hi team,\n\nI withdrew {amount} {coin} to {addr} but the receiving exchange says "
         "they never got it. Your site shows TxID {txid}. Can you confirm it was broadcast?"),
        ("Any update on this? It's been 2 days.", "Attached is the screenshot you asked for.",
         "Still nothing on my side, please escalate.", "Received it now, thank you!"),
        ("Re: ", "RE: "),
        "On {date}, {name} <{email}> wrote:",
        "Automatic reply: {subject}", "I am out of the office until {date} with limited "
        "access to email.",
        ("\n\nSent from my iPhone", "\n\n--\nBest regards", ""),
        ("John Smith", "Emily Johnson", "Michael Brown", "Sarah Davis", "David Wilson",
         "Chris Miller"),
        ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "protonmail.com"),
        (("us-ascii", "ascii", "7bit", 3), ("utf-8", "utf-8", "quoted-printable", 2),
         ("utf-8", "utf-8", "7bit", 1)),
    ),
    Lang(
        "ja", 8, 9,
        ("入金が反映されません", "出金が保留のままです", "アカウントが凍結されました",
         "送金についてのお問い合わせ"),
        ("お世話になっております。\n\n{date}に外部ウォレットから{amount} {coin}を入金しましたが、"
         "まだ残高に反映されていません。ブロックチェーン上では承認済みになっています。\n\n"
         "トランザクションID: {txid}\n入金アドレス: {addr}\nユーザーID: {uid}\n\n"
         "ご確認のほどよろしくお願いいたします。",
         "出金申請（{amount} {coin}、注文番号 {order}）が二日経っても「審査中」のままです。\n"
         "いつ頃処理されますか。",
         "本日ログインしたところ、アカウントが凍結されていると表示されました。心当たりがありません。"
         "\n解除の手続きを教えてください。\n\nユーザーID: {uid}"),
        ("その後いかがでしょうか。", "スクリーンショットを添付します。", "無事に着金しました。"
         "ありがとうございました。"),
        ("Re: ", "RE: "),
        "{date} {name} <{email}>:",
        "自動応答: {subject}", "ただいま不在にしております。{date}以降に返信いたします。",
        ("\n\niPhoneから送信", ""),
        ("佐藤健", "鈴木花子", "高橋誠", "田中美咲", "伊藤大輔"),
        ("yahoo.co.jp", "gmail.com", "docomo.ne.jp", "nifty.com"),
        (("iso-2022-jp", "iso-2022-jp", "7bit", 3), ("shift_jis", "shift_jis", "base64", 2),
         ("utf-8", "utf-8", "base64", 2)),
    ),
    Lang(
        "ko", 8, 9,
        ("입금이 반영되지 않았습니다", "출금이 계속 대기 중입니다", "계정이 동결되었습니다"),
        ("안녕하세요.\n\n{date}에 외부 지갑에서 {amount} {coin}을 입금했는데 아직 잔액에 "
         "반영되지 않았습니다. 블록체인 탐색기에서는 완료로 나옵니다.\n\n트랜잭션 ID: {txid}\n"
         "입금 주소: {addr}\n회원 ID: {uid}\n\n빠른 확인 부탁드립니다.",
         "출금 신청한 {amount} {coin}이 하루가 지나도 처리되지 않고 있습니다.\n"
         "주문번호 {order}입니다. 확인 부탁드립니다.",
         "계정이 갑자기 동결되어 거래와 출금이 모두 막혔습니다. 어떤 서류가 필요한지 "
         "알려주세요.\n회원 ID {uid}"),
        ("진행 상황이 어떻게 되나요?", "요청하신 캡처 화면을 첨부합니다.",
         "입금 확인했습니다. 감사합니다."),
        ("Re: ", "회신: "),
        "{date}, {name} <{email}>님이 작성:",
        "자동 회신: {subject}", "현재 휴가 중입니다. {date} 이후에 답변 드리겠습니다.",
        ("", "\n\n-- \n네이버 메일에서 보냄"),
        ("김민준", "이서연", "박지훈", "최수빈", "정우진"),
        ("naver.com", "daum.net", "gmail.com", "hanmail.net"),
        (("euc-kr", "euc-kr", "base64", 2), ("ks_c_5601-1987", "cp949", "base64", 1),
         ("utf-8", "utf-8", "base64", 2)),
    ),
    Lang(
        "ru", 10, 3,
        ("Не пришёл депозит", "Вывод средств завис", "Аккаунт заблокирован",
         "Проблема с выводом {coin}"),
        ("Здравствуйте!\n\n{date} я отправил {amount} {coin} (сеть {net}) на свой депозитный "
         "адрес {addr}, но средства до сих пор не зачислены. В блокчейне транзакция "
         "подтверждена.\n\nTxID: {txid}\nUID: {uid}\n\nПрошу проверить как можно скорее.",
         "Добрый день.\n\nЗаявка на вывод {amount} {coin} (номер {order}) висит в статусе "
         "\"в обработке\" уже двое суток. Когда будут отправлены средства?",
         "Мой аккаунт заблокирован без объяснения причин. Никаких нарушений я не совершал.\n"
         "Какие документы нужно предоставить для разблокировки? UID {uid}"),
        ("Есть новости по моему обращению?", "Скриншот во вложении.",
         "Средства пришли, спасибо."),
        ("Re: ", "RE: "),
        "{date}, {name} <{email}> пишет:",
        "Автоответ: {subject}", "Я в отпуске до {date}. Отвечу после возвращения.",
        ("\n\n--\nС уважением", "\n\nОтправлено из Почты Mail.ru", ""),
        ("Иван Петров", "Ольга Смирнова", "Дмитрий Козлов", "Анна Волкова", "Сергей Морозов"),
        ("mail.ru", "yandex.ru", "gmail.com", "rambler.ru"),
        (("koi8-r", "koi8-r", "8bit", 1), ("koi8-r", "koi8-r", "base64", 1),
         ("windows-1251", "cp1251", "quoted-printable", 2), ("utf-8", "utf-8", "base64", 2)),
    ),
    Lang(
        "es", 8, -3,
        ("Depósito no acreditado", "Retiro pendiente desde hace días", "Cuenta congelada",
         "No recibí mi retiro de {coin}"),
        ("Hola,\n\nEl {date} hice un depósito de {amount} {coin} por la red {net} a la "
         "dirección {addr}, pero todavía no aparece en mi saldo. En el explorador la "
         "transacción figura como confirmada.\n\nTxID: {txid}\nID de usuario: {uid}\n\n"
         "¿Podrían revisarlo, por favor? Gracias.",
         "Buenas tardes,\n\nsolicité un retiro de {amount} {coin} (orden {order}) y sigue en "
         "estado «pendiente» desde hace 3 días. ¿Cuándo se procesará?",
         "Mi cuenta fue congelada sin ningún aviso y no puedo retirar mis fondos. ¿Qué "
         "documentos necesitan para desbloquearla? Mi ID es {uid}."),
        ("¿Alguna novedad? Ya pasaron dos días.", "Adjunto la captura de pantalla.",
         "Ya me llegó, muchas gracias."),
        ("Re: ", "RE: ", "RV: "),
        "El {date}, {name} <{email}> escribió:",
        "Respuesta automática: {subject}", "Estoy fuera de la oficina hasta el {date}.",
        ("\n\nEnviado desde mi iPhone", "\n\nSaludos", ""),
        ("José García", "María López", "Javier Martínez", "Lucía Fernández", "Andrés Gómez"),
        ("gmail.com", "hotmail.es", "yahoo.es", "outlook.es"),
        (("utf-8", "utf-8", "quoted-printable", 3), ("iso-8859-1", "latin-1", "quoted-printable",
                                                      2), ("windows-1252", "cp1252", "8bit", 1)),
    ),
    Lang(
        "vi", 8, 7,
        ("Nạp tiền chưa về tài khoản", "Rút tiền bị treo", "Tài khoản bị đóng băng"),
        ("Xin chào,\n\nTôi đã nạp {amount} {coin} qua mạng {net} vào địa chỉ {addr} lúc "
         "{date} nhưng số dư vẫn chưa được cộng. Giao dịch đã được xác nhận trên blockchain."
         "\n\nTxID: {txid}\nUID: {uid}\n\nMong các bạn kiểm tra giúp. Cảm ơn!",
         "Chào bộ phận hỗ trợ,\n\nlệnh rút {amount} {coin} (mã lệnh {order}) của tôi đã chờ xử "
         "lý hơn 24 giờ. Khi nào tiền sẽ được chuyển?",
         "Tài khoản của tôi bị đóng băng mà không có lý do. Tôi cần cung cấp giấy tờ gì để "
         "mở khóa? UID {uid}"),
        ("Có tin gì mới chưa ạ?", "Tôi gửi kèm ảnh chụp màn hình.", "Tôi đã nhận được, cảm ơn."),
        ("Re: ", "TL: "),
        "Vào {date}, {name} <{email}> đã viết:",
        "Trả lời tự động: {subject}", "Tôi đang nghỉ phép đến {date}.",
        ("\n\nGửi từ iPhone của tôi", ""),
        ("Nguyễn Văn An", "Trần Thị Bình", "Lê Hoàng Nam", "Phạm Thu Hà", "Võ Minh Tuấn"),
        ("gmail.com", "yahoo.com.vn", "outlook.com"),
        (("utf-8", "utf-8", "quoted-printable", 2), ("utf-8", "utf-8", "base64", 1),
         ("windows-1258", "cp1258", "quoted-printable", 1)),
    ),
)
LANG_WEIGHTS = [lang.weight for lang in LANGS]

COINS = (  # coin, network, address kind, amount range, decimals
    ("USDT", "TRC20", "tron", (20, 25_000), 2), ("USDT", "ERC20", "evm", (50, 50_000), 2),
    ("USDT", "BEP20", "evm", (10, 8_000), 2), ("BTC", "Bitcoin", "btc", (0.001, 3), 6),
    ("ETH", "ERC20", "evm", (0.01, 40), 4), ("SOL", "Solana", "sol", (1, 900), 3),
)
MAILERS = ("Foxmail 7.2.25.228[cn]", "Microsoft Outlook 16.0", "iPhone Mail (21D61)",
           "Mozilla Thunderbird 115.8.0", "NetEase Flash Mail 2.4.1.32",
           "Apple Mail (2.3774.400.31)")
LIST_SOURCES = (
    ("Crypto Daily", "newsletter@cryptodaily.example", "<daily.cryptodaily.example>",
     "Crypto Daily: BTC breaks resistance, ETH staking news"),
    ("币圈早报", "news@bijie.example", "<morning.bijie.example>", "币圈早报：比特币再创新高"),
    ("Airdrop Alerts", "alerts@airdrops.example", "<alerts.airdrops.example>",
     "Weekly airdrop digest"),
)


@dataclass(frozen=True, slots=True)
class GenMail:
    """One generated mail and what it is meant to be."""

    raw: bytes
    kind: str  # "new", "reply", "auto_reply" or "list"
    lang: str
    charset: str
    cte: str
    message_id: str


@dataclass(slots=True)
class _Sent:
    """What a reply needs to know about an earlier mail."""

    lang: Lang
    enc: tuple[str, str, str, int]
    name: str
    email: str
    subject: str
    text: str
    message_id: str
    references: str
    date: datetime


# -- encoding helpers ---------------------------------------------------------------------


def encode_text(text: str, codec: str) -> bytes:
    """``text`` in ``codec``; windows-1258 gets Vietnamese tone marks as combining marks."""
    if codec != "cp1258":
        return text.encode(codec)
    out = bytearray()
    for ch in text:
        try:
            out += ch.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        decomposed = unicodedata.normalize("NFD", ch)
        shape = "".join(m for m in decomposed[1:] if m in _VI_SHAPE_MARKS)
        tones = "".join(m for m in decomposed[1:] if m not in _VI_SHAPE_MARKS)
        base = unicodedata.normalize("NFC", decomposed[0] + shape)
        try:
            out += base.encode("cp1258") + tones.encode("cp1258")
        except UnicodeEncodeError:
            out += decomposed.encode("cp1258", "replace")
    return bytes(out)


def encoded_words(text: str, label: str, codec: str, method: str = "B") -> str:
    """``text`` as RFC 2047 encoded words in ``label`` (each at most 75 characters)."""
    if text.isascii():
        return text
    room = 75 - len(f"=?{label}?{method}??=")
    words: list[str] = []
    chunk = ""
    for ch in text:
        candidate = chunk + ch
        if chunk and _word_len(encode_text(candidate, codec), method) > room:
            words.append(_word(encode_text(chunk, codec), label, method))
            candidate = ch
        chunk = candidate
    if chunk:
        words.append(_word(encode_text(chunk, codec), label, method))
    return " ".join(words)


def _word_len(data: bytes, method: str) -> int:
    if method == "B":
        return (len(data) + 2) // 3 * 4
    return sum(1 if (32 < b < 127 and b not in b"=?_") or b == 32 else 3 for b in data)


def _word(data: bytes, label: str, method: str) -> str:
    if method == "B":
        return f"=?{label}?B?{base64.b64encode(data).decode('ascii')}?="
    body = "".join("_" if b == 32 else chr(b) if 32 < b < 127 and b not in b"=?_"
                   else f"={b:02X}" for b in data)
    return f"=?{label}?Q?{body}?="


def text_part(text: str, subtype: str, label: str, codec: str, cte: str) -> Message:
    """A leaf ``text/<subtype>`` part, encoded by hand so every charset/CTE pair works."""
    data = encode_text(text.replace("\n", "\r\n"), codec)
    part = Message()
    part["Content-Type"] = f'text/{subtype}; charset="{label}"'
    part["Content-Transfer-Encoding"] = cte
    if cte == "base64":
        payload = base64.encodebytes(data).decode("ascii")
    elif cte == "quoted-printable":
        payload = quopri.encodestring(data).decode("ascii")
    else:  # 7bit / 8bit: raw bytes, kept as surrogates so BytesGenerator writes them back
        payload = data.decode("ascii", "surrogateescape")
    part.set_payload(payload)
    return part


def _to_html(text: str, lang: str) -> str:
    paras = "".join(f"<div>{html.escape(line) or '<br>'}</div>" for line in text.split("\n"))
    return (f'<html><head><meta http-equiv="Content-Type" content="text/html">'
            f'<style>body{{font-family:Arial,sans-serif;font-size:14px}}</style></head>'
            f'<body><div dir="ltr" lang="{lang}">{paras}</div></body></html>')


# -- the generator ------------------------------------------------------------------------


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sent: list[_Sent] = []
        self.customers: dict[str, list[tuple[str, str]]] = {lang.code: [] for lang in LANGS}

    # values -----------------------------------------------------------------------------

    def hexs(self, n: int) -> str:
        return f"{self.rng.getrandbits(n * 4):0{n}x}"

    def address(self, kind: str) -> str:
        rng = self.rng
        if kind == "evm":
            return "0x" + self.hexs(40)
        if kind == "tron":
            return "T" + "".join(rng.choices(B58, k=33))
        if kind == "btc":
            return "bc1q" + "".join(rng.choices(BECH32, k=38))
        return "".join(rng.choices(B58, k=44))

    def values(self, when: datetime) -> dict[str, str]:
        rng = self.rng
        coin, net, kind, (low, high), decimals = rng.choice(COINS)
        amount = round(rng.uniform(low, high), decimals)
        txid = ("0x" + self.hexs(64)) if kind == "evm" else self.hexs(64)
        return {"coin": coin, "net": net, "addr": self.address(kind), "txid": txid,
                "amount": f"{amount:,.{decimals}f}" if rng.random() < 0.5 else f"{amount}",
                "uid": str(rng.randint(10_000_000, 99_999_999)),
                "order": f"W{when:%Y%m%d}{rng.randint(100000, 999999)}",
                "date": (when - timedelta(hours=rng.randint(2, 72))).strftime("%Y-%m-%d %H:%M")}

    def customer(self, lang: Lang) -> tuple[str, str]:
        known = self.customers[lang.code]
        if known and self.rng.random() < 0.3:
            return self.rng.choice(known)
        name = self.rng.choice(lang.names)
        local = self.rng.choice(("service", "user", "vip", "acc", "trader", "hodl", "me"))
        if lang.code.startswith("zh") and self.rng.random() < 0.5:
            local = str(self.rng.randint(10_000_000, 3_999_999_999))  # QQ number
        addr = f"{local}{self.rng.randint(1, 99999)}@{self.rng.choice(lang.domains)}"
        known.append((name, addr))
        return name, addr

    def message_id(self, index: int, domain: str, when: datetime) -> str:
        style = self.rng.randrange(3)
        if style == 0:
            return f"<{when:%Y%m%d%H%M%S}{index:06d}{self.rng.randrange(10**6):06d}@{domain}>"
        if style == 1:
            token = base64.b64encode(self.rng.randbytes(30)).decode("ascii").rstrip("=")
            return f"<CA+{token}.{index}@mail.gmail.com>"
        return f"<{self.hexs(8)}-{self.hexs(4)}-{self.hexs(4)}-{index:012d}@{domain}>"

    def encoding(self, lang: Lang) -> tuple[str, str, str, int]:
        return self.rng.choices(lang.encodings, [e[3] for e in lang.encodings])[0]

    # mails ------------------------------------------------------------------------------

    def mail(self, index: int) -> GenMail:
        when = BASE_TIME + timedelta(seconds=index * 37 + self.rng.randrange(30))
        roll = self.rng.random()
        if roll < 0.02:
            return self.list_mail(index, when)
        if roll < 0.04:
            return self.auto_reply(index, when)
        if roll < 0.14 and self.sent:
            return self.reply(index, when)
        return self.new_mail(index, when)

    def new_mail(self, index: int, when: datetime) -> GenMail:
        rng = self.rng
        lang = rng.choices(LANGS, LANG_WEIGHTS)[0]
        enc = self.encoding(lang)
        name, addr = self.customer(lang)
        values = self.values(when)
        subject = rng.choice(lang.subjects).format(**values)
        text = rng.choice(lang.bodies).format(**values) + rng.choice(lang.signatures)
        local_when = when.astimezone(timezone(timedelta(hours=lang.tz_hours)))
        msgid = self.message_id(index, addr.split("@", 1)[1], when)
        self.sent.append(_Sent(lang, enc, name, addr, subject, text, msgid, "", local_when))
        raw = self.build(lang, enc, name, addr, subject, text, msgid, local_when, None, "")
        return GenMail(raw, "new", lang.code, enc[0], enc[2], msgid)

    def reply(self, index: int, when: datetime) -> GenMail:
        rng = self.rng
        orig = rng.choice(self.sent[-400:])
        lang, enc = orig.lang, orig.enc
        prefix = rng.choice(lang.reply_prefix)
        subject = orig.subject if orig.subject.startswith(prefix) else prefix + orig.subject
        attribution = lang.attribution.format(date=orig.date.strftime("%Y-%m-%d %H:%M"),
                                              name=orig.name, email=orig.email)
        quoted = "\n".join(f"> {line}" if line else ">" for line in orig.text.split("\n"))
        text = f"{rng.choice(lang.followups)}\n\n{attribution}\n{quoted}\n"
        local_when = when.astimezone(timezone(timedelta(hours=lang.tz_hours)))
        msgid = self.message_id(index, orig.email.split("@", 1)[1], when)
        references = f"{orig.references} {orig.message_id}".strip()
        self.sent.append(_Sent(lang, enc, orig.name, orig.email, subject, text, msgid,
                               references, local_when))
        raw = self.build(lang, enc, orig.name, orig.email, subject, text, msgid, local_when,
                         orig.message_id, references)
        return GenMail(raw, "reply", lang.code, enc[0], enc[2], msgid)

    def auto_reply(self, index: int, when: datetime) -> GenMail:
        rng = self.rng
        lang = rng.choices(LANGS, LANG_WEIGHTS)[0]
        enc = ("utf-8", "utf-8", "quoted-printable", 1) if rng.random() < 0.5 else \
            self.encoding(lang)
        name, addr = self.customer(lang)
        ticket = f"T-{rng.randint(100000, 999999)}"
        subject = lang.auto_subject.format(
            subject=f"[#{ticket}] We received your request")
        back = (when + timedelta(days=rng.randint(2, 14))).strftime("%Y-%m-%d")
        text = lang.auto_body.format(date=back)
        msgid = self.message_id(index, addr.split("@", 1)[1], when)
        in_reply_to = f"<ack-{ticket}.{self.hexs(12)}@exchange.example>"
        local_when = when.astimezone(timezone(timedelta(hours=lang.tz_hours)))
        extra = [("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All")]
        raw = self.build(lang, enc, name, addr, subject, text, msgid, local_when, in_reply_to,
                         in_reply_to, extra=extra, alternative=False)
        return GenMail(raw, "auto_reply", lang.code, enc[0], enc[2], msgid)

    def list_mail(self, index: int, when: datetime) -> GenMail:
        name, addr, list_id, subject = self.rng.choice(LIST_SOURCES)
        lang = LANGS[0] if not subject.isascii() else LANGS[2]
        enc = ("utf-8", "utf-8", "base64", 1)
        values = self.values(when)
        text = (f"{subject}\n\nTop stories today:\n- {values['coin']} on {values['net']}: "
                f"volume up {self.rng.randint(2, 60)}%\n- Whale moved {values['amount']} "
                f"{values['coin']} to {values['addr']}\n\nUnsubscribe: "
                f"https://{addr.split('@')[1]}/u/{self.hexs(16)}")
        msgid = self.message_id(index, addr.split("@", 1)[1], when)
        extra = [("List-Id", f"{name.encode('ascii', 'replace').decode()} {list_id}"),
                 ("List-Unsubscribe", f"<mailto:unsubscribe@{addr.split('@')[1]}>, "
                                      f"<https://{addr.split('@')[1]}/u/{self.hexs(16)}>"),
                 ("Precedence", "bulk")]
        raw = self.build(lang, enc, name, addr, subject, text, msgid, when, None, "",
                         extra=extra, alternative=True)
        return GenMail(raw, "list", lang.code, enc[0], enc[2], msgid)

    def build(self, lang: Lang, enc: tuple[str, str, str, int], name: str, addr: str,
              subject: str, text: str, msgid: str, when: datetime, in_reply_to: str | None,
              references: str, extra: list[tuple[str, str]] | None = None,
              alternative: bool | None = None) -> bytes:
        rng = self.rng
        label, codec, cte, _ = enc
        if alternative is None:
            alternative = rng.random() < 0.4
        body: Message = text_part(text, "plain", label, codec, cte)
        if alternative:
            alt = MIMEMultipart("alternative", boundary=self.boundary())
            del alt["MIME-Version"]
            alt.attach(body)
            html_cte = "base64" if cte == "8bit" and rng.random() < 0.5 else cte
            alt.attach(text_part(_to_html(text, lang.code), "html", label, codec, html_cte))
            body = alt
        if extra is None and rng.random() < 0.15:
            mixed = MIMEMultipart("mixed", boundary=self.boundary())
            del mixed["MIME-Version"]
            mixed.attach(body)
            mixed.attach(self.attachment(lang, label, codec))
            body = mixed
        msg = body
        method = "Q" if codec in ("latin-1", "cp1252", "cp1258") or (
            label == "utf-8" and lang.code in ("es", "vi")) else "B"
        hlabel, hcodec = (label, codec) if codec != "ascii" else ("utf-8", "utf-8")
        headers = [
            ("Received", f"from mx{rng.randint(1, 9)}.{addr.split('@')[1]} "
                         f"(unknown [{rng.randint(1, 223)}.{rng.randint(0, 255)}."
                         f"{rng.randint(0, 255)}.{rng.randint(1, 254)}]) by mx.exchange.example "
                         f"with ESMTPS id {self.hexs(12)}; {format_datetime(when)}"),
            ("Return-Path", f"<{addr}>"),
            ("Date", format_datetime(when)),
            ("From", f"{encoded_words(name, hlabel, hcodec, method)} <{addr}>"
             if rng.random() < 0.9 else addr),
            ("To", SUPPORT if rng.random() < 0.8 else
             f"{encoded_words('客服', 'utf-8', 'utf-8')} <{SUPPORT}>"),
            ("Subject", encoded_words(subject, hlabel, hcodec, method)),
            ("Message-ID", msgid),
        ]
        if in_reply_to:
            headers.append(("In-Reply-To", in_reply_to))
        if references:
            headers.append(("References", references))
        headers += [("MIME-Version", "1.0"), ("X-Mailer", rng.choice(MAILERS)),
                    *(extra or [])]
        existing = list(msg.items())
        for key in list(msg.keys()):
            del msg[key]
        for key, value in [*headers, *existing]:
            msg[key] = value
        return msg.as_bytes(policy=WIRE)

    def boundary(self) -> str:
        """A boundary from our seeded generator (the stdlib's uses the global ``random``)."""
        return f"----=_Part_{self.rng.randrange(10**6)}_{self.hexs(16)}"

    def attachment(self, lang: Lang, label: str, codec: str) -> Message:
        rng = self.rng
        size = rng.randint(2_000, 8_000)
        if rng.random() < 0.6:
            ctype, data = "image/png", (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" +
                                        rng.randbytes(size))
            name = {"zh-CN": "截图.png", "zh-TW": "截圖.png", "ja": "スクリーンショット.png",
                    "ko": "캡처.png"}.get(lang.code, "screenshot.png")
        else:
            ctype, data = "application/pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + rng.randbytes(size)
            name = "statement.pdf" if lang.code != "zh-CN" else "交易记录.pdf"
        part = Message()
        if name.isascii() or rng.random() < 0.5:  # Foxmail/Outlook style RFC 2047 name
            quoted = encoded_words(name, label if codec != "ascii" else "utf-8",
                                   codec if codec != "ascii" else "utf-8")
            part["Content-Type"] = f'{ctype}; name="{quoted}"'
            part["Content-Disposition"] = f'attachment; filename="{quoted}"'
        else:  # RFC 2231
            part["Content-Type"] = ctype
            part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", name))
        part["Content-Transfer-Encoding"] = "base64"
        part.set_payload(base64.encodebytes(data).decode("ascii"))
        return part


def generate_mails(n: int, seed: int = 20240301) -> list[GenMail]:
    """``n`` mails with labels; the same arguments always give the same bytes."""
    gen = _Generator(seed)
    return [gen.mail(i) for i in range(n)]


def generate(n: int, seed: int = 20240301) -> list[bytes]:
    """``n`` raw mails (bytes with CRLF line ends)."""
    return [m.raw for m in generate_mails(n, seed)]


def main(argv: list[str] | None = None) -> None:
    """Print the mix of a generated set, or write it as ``.eml`` files with ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20240301)
    parser.add_argument("--out", type=Path, help="write <n>.eml files into this directory")
    args = parser.parse_args(argv)
    mails = generate_mails(args.mails, args.seed)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for i, mail in enumerate(mails):
            (args.out / f"{i:06d}.eml").write_bytes(mail.raw)
    size = sum(len(m.raw) for m in mails)
    print(f"{len(mails)} mails, {size / 1e6:.1f} MB")
    for title, counter in (("kind", Counter(m.kind for m in mails)),
                           ("lang", Counter(m.lang for m in mails)),
                           ("charset/cte", Counter(f"{m.charset}/{m.cte}" for m in mails))):
        print(f"{title}: " + ", ".join(f"{k}={v}" for k, v in counter.most_common()))


if __name__ == "__main__":
    main()
