"""Localised words the templates need: category names, entity headings, response times.

Kept in code rather than in the templates so every language has every category, which a
unit test checks against the rule engine's category list.
"""

from __future__ import annotations

LANGUAGES = ("zh", "zh-Hant", "en", "ja", "ko", "ru", "es", "vi")
DEFAULT_LANGUAGE = "en"

CATEGORY_LABELS: dict[str, dict[str, str]] = {
    "account_frozen": {
        "zh": "账户冻结", "zh-Hant": "帳戶凍結", "en": "Account frozen", "ja": "アカウント凍結",
        "ko": "계정 동결", "ru": "Блокировка аккаунта", "es": "Cuenta congelada",
        "vi": "Tài khoản bị đóng băng",
    },
    "login_issue": {
        "zh": "登录问题", "zh-Hant": "登入問題", "en": "Login issue", "ja": "ログインの問題",
        "ko": "로그인 문제", "ru": "Проблема со входом", "es": "Problema de inicio de sesión",
        "vi": "Sự cố đăng nhập",
    },
    "deposit_missing": {
        "zh": "充值未到账", "zh-Hant": "入金未到帳", "en": "Missing deposit", "ja": "入金の未反映",
        "ko": "입금 미반영", "ru": "Не зачислен депозит", "es": "Depósito no acreditado",
        "vi": "Khoản nạp chưa được ghi có",
    },
    "withdrawal": {
        "zh": "提现", "zh-Hant": "提領", "en": "Withdrawal", "ja": "出金", "ko": "출금",
        "ru": "Вывод средств", "es": "Retiro", "vi": "Rút tiền",
    },
    "security": {
        "zh": "账户安全", "zh-Hant": "帳戶安全", "en": "Account security", "ja": "アカウントの安全",
        "ko": "계정 보안", "ru": "Безопасность аккаунта", "es": "Seguridad de la cuenta",
        "vi": "Bảo mật tài khoản",
    },
    "kyc": {
        "zh": "身份认证 (KYC)", "zh-Hant": "身分驗證 (KYC)", "en": "Identity verification (KYC)",
        "ja": "本人確認 (KYC)", "ko": "본인 인증 (KYC)", "ru": "Верификация личности (KYC)",
        "es": "Verificación de identidad (KYC)", "vi": "Xác minh danh tính (KYC)",
    },
    "trading": {
        "zh": "交易", "zh-Hant": "交易", "en": "Trading", "ja": "取引", "ko": "거래",
        "ru": "Торговля", "es": "Trading", "vi": "Giao dịch",
    },
    "api": {
        "zh": "API", "zh-Hant": "API", "en": "API", "ja": "API", "ko": "API", "ru": "API",
        "es": "API", "vi": "API",
    },
    "promotion": {
        "zh": "活动与奖励", "zh-Hant": "活動與獎勵", "en": "Promotions and rewards",
        "ja": "キャンペーン・特典", "ko": "이벤트 및 리워드", "ru": "Акции и бонусы",
        "es": "Promociones y recompensas", "vi": "Khuyến mãi và phần thưởng",
    },
    "fees_refund": {
        "zh": "手续费与退款", "zh-Hant": "手續費與退款", "en": "Fees and refunds",
        "ja": "手数料・返金", "ko": "수수료 및 환불", "ru": "Комиссии и возвраты",
        "es": "Comisiones y reembolsos", "vi": "Phí và hoàn tiền",
    },
    "feedback": {
        "zh": "意见反馈", "zh-Hant": "意見回饋", "en": "Feedback", "ja": "ご意見・ご要望",
        "ko": "의견 및 제안", "ru": "Отзыв", "es": "Comentarios", "vi": "Góp ý",
    },
    "scam_report": {
        "zh": "诈骗举报", "zh-Hant": "詐騙檢舉", "en": "Scam report", "ja": "詐欺の報告",
        "ko": "사기 신고", "ru": "Сообщение о мошенничестве", "es": "Denuncia de estafa",
        "vi": "Báo cáo lừa đảo",
    },
    "general": {
        "zh": "一般咨询", "zh-Hant": "一般諮詢", "en": "General enquiry",
        "ja": "一般的なお問い合わせ",
        "ko": "일반 문의", "ru": "Общий вопрос", "es": "Consulta general", "vi": "Câu hỏi chung",
    },
}

ENTITY_FIELDS = ("amounts", "assets", "networks", "txids", "addresses", "order_ids")

ENTITY_LABELS: dict[str, dict[str, str]] = {
    "zh": {"amounts": "金额", "assets": "币种", "networks": "网络", "txids": "交易哈希 (TxID)",
           "addresses": "地址", "order_ids": "订单号"},
    "zh-Hant": {"amounts": "金額", "assets": "幣種", "networks": "網路",
                "txids": "交易雜湊 (TxID)", "addresses": "地址", "order_ids": "訂單編號"},
    "en": {"amounts": "Amounts", "assets": "Assets", "networks": "Networks",
           "txids": "Transaction IDs (TxID)", "addresses": "Addresses", "order_ids": "Order IDs"},
    "ja": {"amounts": "金額", "assets": "通貨", "networks": "ネットワーク",
           "txids": "トランザクションID (TxID)", "addresses": "アドレス", "order_ids": "注文ID"},
    "ko": {"amounts": "금액", "assets": "자산", "networks": "네트워크",
           "txids": "트랜잭션 ID (TxID)", "addresses": "주소", "order_ids": "주문 번호"},
    "ru": {"amounts": "Суммы", "assets": "Активы", "networks": "Сети",
           "txids": "ID транзакций (TxID)", "addresses": "Адреса", "order_ids": "Номера ордеров"},
    "es": {"amounts": "Importes", "assets": "Activos", "networks": "Redes",
           "txids": "ID de transacción (TxID)", "addresses": "Direcciones",
           "order_ids": "ID de orden"},
    "vi": {"amounts": "Số tiền", "assets": "Tài sản", "networks": "Mạng",
           "txids": "Mã giao dịch (TxID)", "addresses": "Địa chỉ", "order_ids": "Mã lệnh"},
}


def known_language(language: str | None) -> str:
    """``language`` if the desk writes in it, else the default language."""
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def category_label(category: str, language: str | None) -> str:
    """The localised name of a category code; the code itself when it is unknown."""
    labels = CATEGORY_LABELS.get(category)
    if labels is None:
        return category
    return labels[known_language(language)]


def entity_label(field: str, language: str | None) -> str:
    """The localised heading for one entity list (``txids``, ``amounts`` ...)."""
    return ENTITY_LABELS[known_language(language)].get(field, field)


def response_time(hours: int, language: str | None) -> str:
    """How a promise of ``hours`` reads in ``language``: "within 24 hours", "24小时内" ..."""
    lang = known_language(language)
    if lang == "en":
        return f"within {hours} hour" + ("" if hours == 1 else "s")
    if lang == "es":
        return f"en un plazo de {hours} hora" + ("" if hours == 1 else "s")
    if lang == "ru":
        return f"в течение {hours} {_russian_hours(hours)}"
    return {
        "zh": f"{hours}小时内",
        "zh-Hant": f"{hours}小時內",
        "ja": f"{hours} 時間以内",
        "ko": f"{hours}시간 이내",
        "vi": f"trong vòng {hours} giờ",
    }[lang]


def _russian_hours(hours: int) -> str:
    """Genitive after "в течение": 1, 21, 31 ... часа; everything else часов."""
    return "часа" if hours % 10 == 1 and hours % 100 != 11 else "часов"
