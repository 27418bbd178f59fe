"""Rules throughput: classification per mail with the default pack and with 2,000 rules.

    .venv/bin/python -m bench.rules [--mails 5000] [--rules 2000] [--json PATH]

The mails are the dev corpus, parsed once (parsing is measured by bench/ingest.py) and
cycled up to --mails. Phases are timed separately on one core: rule evaluation (facts +
Aho-Corasick scan + rule tree), entity extraction, secret redaction, language detection.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailer.ingest.mail import ParsedMail
from mailer.ingest.parse import parse_mail
from mailer.rules.engine import RuleSet, evaluate
from mailer.rules.entities import extract_entities
from mailer.rules.facts import MailFacts
from mailer.rules.language import detect_for_mail
from mailer.rules.loader import load_rules, parse_rules
from mailer.rules.secrets import redact

CORPUS = Path(os.environ.get("MAILER_CORPUS_DIR",
                             Path(__file__).resolve().parents[2] / "shared/corpus/dev"))
VOCAB = ("deposit withdrawal frozen account login password kyc passport futures order api "
         "fee refund bonus airdrop scam phishing usdt btc eth network address hash pending "
         "冻结 提现 充值 未到账 合约 手续费 退款 活动 认证 出金 入金 凍結 出金 입금 출금 동결 "
         "вывод депозит заблокирован retiro depósito bloqueada rút nạp khóa").split()


def generated_rules(n: int, seed: int = 7, common: float = 0.2) -> RuleSet:
    """``n`` rules shaped like an ops team's: mostly keywords, some senders, a few regexes.

    A keyword is a common support word with probability ``common`` (each such word then sits
    in dozens of rules and matches most mails), else a rule-specific term (a product name,
    a campaign code) that rarely matches. The matches per mail are printed with the result.
    """
    rng = random.Random(seed)
    categories = ("kyc", "api", "trading", "withdrawal", "deposit_missing", "general")
    specs: list[dict[str, Any]] = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.90:
            words = [rng.choice(VOCAB) + ("" if rng.random() < common else str(i))
                     for _ in range(5)]
            when: dict[str, Any] = {"keywords": words, "in": rng.choice(
                [["subject"], ["new_text"], ["subject", "new_text"]])}
        elif roll < 0.97:
            when = {"sender-domain": f"d{i}.example"}
        elif roll < 0.99:
            when = {"all": [{"entity": "txids"}, {"language": rng.choice(["zh", "en"])}]}
        else:
            when = {"regex": rf"\bref[- ]?{i}\d+\b", "in": "new_text"}
        specs.append({"name": f"g{i}", "when": when,
                      "set": {"category": rng.choice(categories), "tags": [f"t{i % 50}"]}})
    return parse_rules({"rules": specs})


def corpus_mails(n: int) -> list[ParsedMail]:
    files = sorted(CORPUS.glob("*.eml"))
    parsed = [parse_mail(f.read_bytes()) for f in files]
    return [parsed[i % len(parsed)] for i in range(n)]


def facts_of(mail: ParsedMail, entities: dict[str, list[str]]) -> MailFacts:
    return MailFacts(subject=mail.subject, body=mail.text, new_text=mail.new_text,
                     sender=mail.from_.address if mail.from_ else "", headers=mail.headers,
                     language=None, attachment_types=(),
                     entities=tuple((k, tuple(v)) for k, v in entities.items()))


def timed(label: str, mails: list[ParsedMail], func: Callable[[ParsedMail], object]) -> dict:
    start = time.perf_counter()
    for mail in mails:
        func(mail)
    seconds = time.perf_counter() - start
    return {"phase": label, "mails": len(mails), "seconds": round(seconds, 3),
            "mails_per_s": round(len(mails) / seconds), "us_per_mail": round(
                seconds / len(mails) * 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mails", type=int, default=5000)
    parser.add_argument("--rules", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    mails = corpus_mails(args.mails)
    ents = {id(m): extract_entities(f"{m.subject}\n{m.new_text}").as_dict() for m in mails}
    default, big = load_rules(), generated_rules(args.rules)
    matched = sum(len(evaluate(big, facts_of(m, ents[id(m)])).hits) for m in mails[:500]) / 500
    rows = [
        timed(f"rules: default pack ({len(default.rules)} rules)", mails,
              lambda m: evaluate(default, facts_of(m, ents[id(m)]))),
        timed(f"rules: {len(big.rules)} generated ({matched:.0f} match/mail)", mails,
              lambda m: evaluate(big, facts_of(m, ents[id(m)]))),
        timed("entity extraction", mails,
              lambda m: extract_entities(f"{m.subject}\n{m.new_text}")),
        timed("secret redaction", mails, lambda m: redact(m.text)),
        timed("language detection", mails,
              lambda m: detect_for_mail(m.subject, m.new_text, m.text)),
    ]
    print(f"{'phase':<40} {'mails':>6} {'s':>7} {'mails/s':>9} {'us/mail':>8}")
    for r in rows:
        print(f"{r['phase']:<40} {r['mails']:>6} {r['seconds']:>7} {r['mails_per_s']:>9} "
              f"{r['us_per_mail']:>8}")
    if args.json:
        meta = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                "python": platform.python_version(), "cpus": os.cpu_count(),
                "machine": platform.machine()}
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
