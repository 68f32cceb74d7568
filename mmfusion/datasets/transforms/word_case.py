"""Word replacement helpers shared by the text-rewriting transforms."""
from __future__ import annotations

import re
from typing import Dict


def match_case(original: str, word: str) -> str:
    """``word`` in the case pattern of ``original`` (lower, Title, UPPER)."""
    if original.isupper() and len(original) > 1:
        return word.upper()
    if original[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def word_pattern(words) -> 're.Pattern[str]':
    """A case-insensitive pattern matching any of ``words`` as whole words."""
    return re.compile(
        r'\b(' + '|'.join(map(re.escape, sorted(words, key=len,
                                                reverse=True))) + r')\b',
        re.IGNORECASE)


def replace_words(pattern: 're.Pattern[str]', mapping: Dict[str, str],
                  text: str) -> str:
    """Every match of ``pattern`` in ``text`` replaced by ``mapping`` of its
    lower-cased form, keeping its case pattern; all at once, so a swap
    ``left <-> right`` does not undo itself."""
    return pattern.sub(
        lambda m: match_case(m.group(0), mapping[m.group(0).lower()]), text)
