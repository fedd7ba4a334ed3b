"""Vietnamese text for search: normalise, fold (đ→d too), tokenise, expand abbreviations.

Three traps shape this module (see DESIGN.md): SQLite/ICU folding never turns đ into d; the
same syllable can be written with its tone mark on different vowels ("hoà" / "hòa", "thuỷ" /
"thủy"); and common stopword lists drop words that carry meaning here ("người", "không").
So every syllable gets two keys: the folded form (no marks at all, đ→d) that unaccented
queries match, and an accented key that moves the tone out of the word ("hòa" → "hoa2") so
both tone placements meet, and accented queries can rank accented matches first.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# Combining marks: the five tones, and the vowel marks that make different letters.
_TONES = {"\u0300": "2", "\u0301": "1", "\u0303": "4", "\u0309": "3", "\u0323": "5"}
_VOWEL_MARKS = {"\u0302", "\u0306", "\u031b"}  # circumflex, breve, horn
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """NFC, lower case, collapsed white space. Handles NFD input (as some phones send it)."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text).lower()).strip()


def fold(text: str) -> str:
    """Remove every diacritic, đ→d included: "Đại đoàn kết" → "dai doan ket"."""
    decomposed = unicodedata.normalize("NFD", normalize(text))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.replace("đ", "d")


def number(value: float, decimals: int = 0) -> str:
    """A figure as Vietnamese write it: "." between thousands, "," before decimals (1.234,5)."""
    text = f"{value:,.{decimals}f}"
    return text.replace(",", " ").replace(".", ",").replace(" ", ".")


def percent(share: float) -> str:
    """0.625 → "62,5%" (one decimal, dropped when it is zero: "50%")."""
    text = number(share * 100, 1)
    return (text[:-2] if text.endswith(",0") else text) + "%"


def has_diacritics(text: str) -> bool:
    """True if the text carries any Vietnamese mark (a tone, a vowel mark or đ)."""
    lowered = unicodedata.normalize("NFD", text.lower())
    return "đ" in lowered or any(unicodedata.combining(ch) for ch in lowered)


def tone_key(syllable: str) -> str:
    """The accented key of one syllable: letters with vowel marks (and đ), tone as a digit.

    "hoà" and "hòa" → "hoa2"; "người" → "ngươi2"; "đại" → "đai5"; "y" → "y".
    """
    tone = ""
    kept = []
    for ch in unicodedata.normalize("NFD", syllable):
        if ch in _TONES:
            tone = _TONES[ch]
        elif not unicodedata.combining(ch) or ch in _VOWEL_MARKS:
            kept.append(ch)
    return unicodedata.normalize("NFC", "".join(kept)) + tone


def syllables(text: str) -> list[str]:
    """Split normalised text into syllables (letters and digits); punctuation and emoji drop."""
    return _WORD.findall(unicodedata.normalize("NFC", text).lower())  # white space needs no collapsing here


@dataclass(frozen=True)
class Token:
    """One syllable of analysed text: its folded form and its accented key."""

    folded: str
    accented: str
    expanded: bool = field(default=False, compare=False)  # from an abbreviation, not as typed


@dataclass
class Analyzer:
    """Turns text into tokens, expanding abbreviations and teencode on the way.

    `expansions` maps a folded key ("bhyt", "dc", "ko") to the words it stands for. A key of
    several syllables ("tnd tq": tổ nhân dân tự quản) is matched as a sequence, before its
    syllables one by one: "tq" alone may stand for something else ("mttq" is mặt trận tổ quốc).
    """

    expansions: Mapping[str, str] = field(default_factory=dict)
    # Regional words ("răng": sao, "mần": làm) match only as written with their marks (either tone
    # placement): folded, "rang" and "man" are other words.
    exact: Mapping[str, str] = field(default_factory=dict)
    _exact: dict[str, list[Token]] = field(default_factory=dict, init=False, repr=False)
    _expanded: dict[str, list[Token]] = field(default_factory=dict, init=False, repr=False)
    _cache: dict[str, list[Token]] = field(default_factory=dict, init=False, repr=False)
    # last syllable (folded, and as written) -> (the syllables before it folded, the expansion),
    # longest first: keyed on the last, usually the rare abbreviation ("tq"), not a common first word ("tổ")
    _phrases: dict[str, list[tuple[tuple[str, ...], list[Token]]]] = field(
        default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for key, phrase in self.expansions.items():
            expansion = _expansion(phrase)
            words = syllables(key)
            if len(words) > 1:
                before = tuple(fold(w) for w in words[:-1])
                for last in {fold(words[-1]), words[-1]}:
                    self._phrases.setdefault(last, []).append((before, expansion))
            elif words:
                self._expanded[fold(key)] = expansion
        for candidates in self._phrases.values():
            candidates.sort(key=lambda c: -len(c[0]))
        for key, phrase in self.exact.items():
            self._exact[tone_key(normalize(key))] = _expansion(phrase)

    def tokens(self, text: str) -> list[Token]:
        words = syllables(text)
        phrases = self._phrases
        if phrases and not phrases.keys().isdisjoint(words):  # rare: most texts skip this loop
            return self._tokens_with_phrases(words)
        out: list[Token] = []
        cache = self._cache
        for syllable in words:
            analysed = cache.get(syllable)
            if analysed is None:
                analysed = self._analysed(syllable)
            out.extend(analysed)
        return out

    def _tokens_with_phrases(self, words: list[str]) -> list[Token]:
        out: list[Token] = []
        starts: list[int] = []  # where each word's tokens begin in `out`
        for position, syllable in enumerate(words):
            starts.append(len(out))
            candidates = self._phrases.get(syllable)
            found = _phrase_ending(candidates, words, position) if candidates else None
            if found is not None:  # the words before it are part of the phrase: replace their tokens
                before, expansion = found
                del out[starts[position - before]:]
                out.extend(expansion)
                continue
            out.extend(self._cache.get(syllable) or self._analysed(syllable))
        return out

    def _analysed(self, syllable: str) -> list[Token]:
        analysed = self._syllable(syllable)
        if len(self._cache) < 200_000:  # the vocabulary is small; bound it against junk input
            self._cache[syllable] = analysed
        return analysed

    def seen(self) -> set[Token]:
        """Every distinct token this analyser has produced (its cache, and its phrase
        expansions): a knowledge base's vocabulary."""
        return {t for tokens in self._cache.values() for t in tokens} | {
            t for candidates in self._phrases.values() for _, expansion in candidates for t in expansion}

    def _syllable(self, syllable: str) -> list[Token]:
        expansion = self._exact.get(tone_key(syllable)) if self._exact else None
        if expansion is not None:
            return expansion
        expansion = self._expanded.get(fold(syllable))
        if expansion is not None and not _is_real_word(syllable, expansion):
            return expansion
        return [Token(fold(syllable), tone_key(syllable))]


def _expansion(phrase: str) -> list[Token]:
    return [Token(fold(s), tone_key(s), expanded=True) for s in syllables(phrase)]


def _phrase_ending(
    candidates: list[tuple[tuple[str, ...], list[Token]]], words: list[str], position: int,
) -> tuple[int, list[Token]] | None:
    """The longest several-syllable abbreviation ending at `position`: (how many words before it
    it spans, its expansion), or None."""
    for before, expansion in candidates:
        start = position - len(before)
        if start >= 0 and tuple(fold(w) for w in words[start:position]) == before:
            return len(before), expansion
    return None


def _is_real_word(syllable: str, expansion: list[Token]) -> bool:
    """An accented syllable that is itself one of the expansion's words is left alone."""
    return has_diacritics(syllable) and any(t.accented == tone_key(syllable) for t in expansion)


# Words that carry politeness, address or grammar but no topic ("dạ cho con hỏi … ạ").
# They stay in the index and the query (never dropped: "không", "được", "người" carry meaning
# and are not here); they only count less when judging how much of a question an entry explains.
FILLERS = frozenset(
    """ạ à ạh dạ vâng ơi nhé nhỉ nha hả hở vậy thế thì là mà à ừ ừm ờ
    cho hỏi xin chào cảm ơn cám làm ơn giúp giùm
    tôi tui tớ mình ta chúng cháu con em anh chị cô chú bác ông bà dì cậu mợ thím ad admin bạn
    của và với thì để ở có này kia đó ấy nào gì sao đâu ai mấy bao nhiêu như là
    rồi đã đang sẽ vẫn cũng lắm rất quá nhiều ít một hai các những cái việc
    muốn cần biết hỏi thắc mắc được không chưa có phải""".split()
)


def load_expansions(tables: Iterable[Mapping[str, str]]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for table in tables:
        for key, value in table.items():
            merged[str(key)] = str(value)
    return merged
