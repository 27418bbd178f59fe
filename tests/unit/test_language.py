"""Language detection: each language on support mails, mixed scripts, and the dev corpus."""

from __future__ import annotations

import time
import unicodedata
from pathlib import Path

import pytest

from mailer.corpus import load_labels
from mailer.ingest.mail import ParsedMail
from mailer.ingest.parse import parse_mail
from mailer.rules.language import LANGUAGES, detect_for_mail, detect_language

CASES = {
    "zh": [
        "你好，我昨天从钱包转了 500 USDT（TRC20）到平台，交易哈希 "
        "9f2c0a7e4b1d3c5a8e6f0b2d4c6a8e0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c0d，余额一直没变。",
        "提币申请已经审核通过，但是链上一直查不到这笔交易，请问是什么原因？",
        "请问 BTC/USDT 永续合约的资金费率是怎么计算的？这两天扣得特别多。",
        "客服你好，我在 APP 里绑定了谷歌验证器，现在换手机了收不到验证码，怎么重置 2FA？",
    ],
    "zh-Hant": [
        "您好，我昨天從錢包轉了 500 USDT（TRC20）到平台，但是帳戶餘額一直沒有變化。",
        "提幣申請已經審核通過，但是鏈上一直查不到這筆交易，請問是什麼原因？",
        "請問 BTC/USDT 永續合約的資金費率是怎麼計算的？這兩天扣得特別多。",
        "客服你好，我換了新手機，Google 驗證器的驗證碼收不到，要怎麼重設 2FA？",
    ],
    "ja": [
        "お世話になっております。昨日 500 USDT を TRC20 で入金しましたが、"
        "まだ残高に反映されていません。",
        "出金申請が承認されたのに、ブロックチェーン上でトランザクションが見つかりません。",
        "二段階認証アプリを入れた端末を紛失しました。2FAのリセット方法を教えてください。",
    ],
    "ko": [
        "안녕하세요. 어제 USDT 500개를 TRC20 네트워크로 입금했는데 "
        "아직 잔고에 반영되지 않았습니다.",
        "출금 신청이 승인됐는데 익스플로러에서 트랜잭션이 조회되지 않아요. TxID 확인 부탁드립니다.",
        "Google OTP 앱이 있는 휴대폰을 잃어버렸습니다. 2FA 초기화는 어떻게 하나요?",
        "API key 권한을 withdraw로 설정했는데 계속 permission denied 에러가 납니다.",
        "선물 거래에서 funding fee가 너무 많이 빠져나갔어요. 확인해 주세요.",
    ],
    "ru": [
        "Здравствуйте! Вчера отправил 500 USDT в сети TRC20, но баланс до сих пор не обновился.",
        "Вывод одобрен, но транзакция не видна в блокчейне. Проверьте, пожалуйста.",
        "Потерял телефон с приложением Google Authenticator. Как сбросить 2FA?",
        "Аккаунт заблокирован после смены пароля, пишет «подозрительная активность».",
    ],
    "es": [
        "Hola, ayer envié 500 USDT por la red TRC20 y todavía no aparecen en mi cuenta.",
        "Mi retiro fue aprobado pero no encuentro la transacción en el explorador de bloques.",
        "Perdí el teléfono con Google Authenticator. ¿Cómo puedo restablecer el 2FA?",
        "Buenas tardes, quiero saber por qué me cobraron una comisión tan alta en futuros.",
    ],
    "en": [
        "Hi, I sent 500 USDT over TRC20 yesterday and it still hasn't shown up in my account.",
        "My withdrawal was approved but I can't find the transaction on the block explorer.",
        "I lost the phone with my Google Authenticator. How do I reset 2FA?",
        "Why was my account frozen? I only changed my password.",
    ],
    "vi": [
        "Chào sàn, hôm qua tôi đã nạp 500 USDT qua mạng TRC20 nhưng số dư vẫn chưa được cập nhật.",
        "Lệnh rút tiền đã được duyệt nhưng tôi không tìm thấy giao dịch trên blockchain.",
        "Tôi bị mất điện thoại có Google Authenticator. Làm sao để đặt lại 2FA?",
    ],
}


@pytest.mark.parametrize(
    ("language", "text"),
    [(language, text) for language, texts in CASES.items() for text in texts],
)
def test_support_sentences(language, text):
    assert detect_language(text) == language


@pytest.mark.parametrize(
    ("simplified", "traditional"),
    [
        ("我的账号被冻结了，请问怎么解冻？", "我的帳號被凍結了，請問怎麼解凍？"),
        ("这笔钱什么时候到账？", "這筆錢什麼時候到帳？"),
        ("你们的客服为什么不回复？", "你們的客服為什麼不回覆？"),
        ("请帮我注销账户。", "請幫我註銷帳戶。"),
    ],
)
def test_simplified_and_traditional_versions_of_one_sentence(simplified, traditional):
    assert detect_language(simplified) == "zh"
    assert detect_language(traditional) == "zh-Hant"


def test_chinese_with_only_shared_characters_is_simplified():
    assert detect_language("我不知道") == "zh"


@pytest.mark.parametrize(
    "text",
    [
        "口座凍結解除申請中、本人確認書類提出済。審査状況確認願います。",
        "本日出金申請済、未着金。至急確認お願い致します。",
        "入金確認済みですか。",
        "パスワードリセット",
    ],
)
def test_japanese_with_mostly_kanji(text):
    assert detect_language(text) == "ja"


def test_japanese_name_in_katakana_does_not_make_chinese_japanese():
    text = "我在「サトシ」这个商家的 P2P 订单一直没有放币，已经付款两个小时了，请帮忙处理一下。"
    assert detect_language(text) == "zh"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Gracias", "es"),
        ("¿Hay novedades?", "es"),
        ("Sigo esperando mi retiro", "es"),
        ("No funciona la app", "es"),
        ("Thanks!", "en"),
        ("Any update?", "en"),
        ("Still waiting for my withdrawal", "en"),
        ("Is there a fee for this?", "en"),
    ],
)
def test_short_spanish_and_english(text, language):
    assert detect_language(text) == language


@pytest.mark.parametrize(
    "text",
    [
        "Lệnh rút 1.500 USDT của tôi bị từ chối mà không có lý do.",
        "Chao san, toi da nap 500 USDT qua mang TRC20 nhung so du van chua duoc cap nhat.",
        "Lenh rut tien cua toi bi tu choi ma khong co ly do, nho san kiem tra giup.",
        "Tai khoan cua minh bi khoa sau khi doi mat khau, lam sao de mo lai?",
    ],
)
def test_vietnamese_with_and_without_diacritics(text):
    assert detect_language(text) == "vi"


def test_decomposed_vietnamese_is_vietnamese():
    text = unicodedata.normalize("NFD", "Lệnh rút tiền đã được duyệt nhưng tôi chưa nhận được.")
    assert detect_language(text) == "vi"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        (
            "Hi team, my deposit of 0.5 BTC has not arrived after 6 confirmations. "
            "Please check.\n\nRegards,\n王小明",
            "en",
        ),
        (
            "Hello, I have not received my withdrawal of 200 USDT yet. Please check.\n"
            "Nguyễn Văn An",
            "en",
        ),
        ("The app shows 提币失败 when I try to withdraw to my Ledger, what does it mean?", "en"),
        (
            "你好，https://tronscan.org/#/transaction/9f2c0a7e4b1d 我的邮箱 "
            "wang.xiaoming@gmail.com，转账 1000 USDT TRC20 到 "
            "TXhapyf8nvSw619VB1ycDGHmShZNvcMkEW 一直没到账",
            "zh",
        ),
        ("从TokenPocket转入的BNB没到账，Polygonscan 上显示 Success", "zh"),
        ("TokenPocket Polygonscan Arbitrum 没到账", "zh"),
        ("已经收到了，谢谢\n\nSent from my iPhone", "zh"),
        ("Вывод 300 USDT через Arbitrum One висит уже сутки, TxID 0xab12cd34ef56", "ru"),
        (
            "Hola, ¿pueden revisar mi depósito?\n-- \nJohn Smith | Head of Trading | "
            "This e-mail and any attachments are confidential and intended only for you.",
            "es",
        ),
    ],
)
def test_mixed_text_goes_to_the_language_of_the_writing(text, language):
    assert detect_language(text) == language


def test_shouting_is_not_mistaken_for_tickers():
    assert detect_language("PLEASE HELP MY ACCOUNT IS LOCKED") == "en"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n",
        "・",
        "USDT TRC20",
        "0x4a3b2c1d9e8f 1187404682976977303",
        "https://example.test/a/b",
    ],
)
def test_nothing_written_is_undecided(text):
    assert detect_language(text) is None


def test_every_answer_is_one_of_ours():
    answers = {detect_language(t) for texts in CASES.values() for t in texts}
    assert answers <= set(LANGUAGES)


def test_mail_uses_subject_when_body_is_empty():
    assert detect_for_mail("can't login - 2FA code always invalid", "", "") == "en"


def test_mail_prefers_new_text_over_quoted_history():
    quoted = "> 您好，您的提币申请已经处理完毕，请查收。\n> 交易所客服中心"
    new = "Thanks, I have received the funds now. You can close the ticket."
    assert detect_for_mail("Re: 提币 [#T-200101]", new, f"{new}\n\n{quoted}") == "en"


def test_mail_falls_back_to_full_text_when_new_text_is_too_short():
    full = "好的\n\n> 您好，您的提币申请已经处理完毕，请查收到账情况。\n> 交易所客服中心"
    assert detect_for_mail("Re: [#T-200101]", "好的", full) == "zh"
    assert (
        detect_for_mail("RE: [#T-200101]", "ok", "ok\n\n> Your withdrawal has been processed.")
        == "en"
    )


@pytest.mark.parametrize(
    "text",
    [
        "a" * 100_000,
        "a_" * 50_000,
        "AA." * 30_000 + "a",
        "a@" * 50_000,
        "/a" * 50_000,
        "中" * 100_000,
        "ư" * 100_000,
        "-- \n" * 20_000 + "hi",
    ],
)
def test_hostile_input_is_fast(text):
    started = time.perf_counter()
    detect_for_mail(text, text, text + text)
    assert time.perf_counter() - started < 0.5


@pytest.fixture(scope="module")
def corpus_mails(corpus_dir: Path) -> list[tuple[str, str, ParsedMail]]:
    """(file, labelled language, parsed mail) for every corpus mail not meant for quarantine."""
    labels = [label for label in load_labels(corpus_dir) if label.expect != "quarantine"]
    return [
        (label.file, label.language, parse_mail((corpus_dir / label.file).read_bytes()))
        for label in labels
    ]


def test_corpus_accuracy(corpus_mails):
    wrong = [
        (name, expected)
        for name, expected, mail in corpus_mails
        if detect_for_mail(mail.subject, mail.new_text, mail.text) != expected
    ]
    assert len(wrong) <= 0.05 * len(corpus_mails), wrong
