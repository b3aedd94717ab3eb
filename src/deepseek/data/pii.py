"""Masking personal data in text: e-mail addresses, phone numbers, IPv4 addresses, payment card numbers."""

from __future__ import annotations

import re

from .rules import PiiRule

EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
IPV4 = re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")
CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
PHONE = re.compile(r"(?<![\w.])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){2,4}(?![\w.])")


def _luhn(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def mask(text: str, rule: PiiRule) -> tuple[str, int]:
    """``text`` with the kinds ``rule`` asks for replaced by ``<EMAIL>``, ``<CARD>``, ``<IP>``, ``<PHONE>``; and
    how many were masked. Card numbers must pass the Luhn check (so order numbers are left alone)."""
    found = 0

    def sub(pattern: re.Pattern, token: str, text: str, check=None) -> str:
        def repl(m: re.Match) -> str:
            nonlocal found
            if check is not None and not check(m.group(0)):
                return m.group(0)
            found += 1
            return token
        return pattern.sub(repl, text)

    if rule.email:
        text = sub(EMAIL, "<EMAIL>", text)
    if rule.credit_card:
        text = sub(CARD, "<CARD>", text, lambda s: _luhn(re.sub(r"\D", "", s)))
    if rule.ip:
        text = sub(IPV4, "<IP>", text)
    if rule.phone:
        text = sub(PHONE, "<PHONE>", text, lambda s: 7 <= len(re.sub(r"\D", "", s)) <= 15)
    return text, found
