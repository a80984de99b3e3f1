"""Text keys shared by pool, dedup, decontamination and the streaming MinHash: normalisation, the exact-duplicate
key and the word/number tokens. No limo imports, so any layer may use it.
"""

import re
import unicodedata

_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def normalize_text(text: str) -> str:
    """NFKC, unified newlines, runs of spaces collapsed, trailing spaces per line removed, stripped."""
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(_SPACES.sub(" ", line).rstrip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def exact_key(text: str) -> str:
    """Key for exact-duplicate checks: NFKC, lower-cased, all whitespace removed (as in shared/data/README.md)."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text).lower())


_TOKEN = re.compile(r"[a-z]+|\d+(?:\.\d+)?")


def tokens(text: str) -> list[str]:
    """Words and numbers of a lower-cased, NFKC-normalised text; LaTeX punctuation and `$` are ignored, so
    formatting differences do not hide a copied problem."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).lower())
