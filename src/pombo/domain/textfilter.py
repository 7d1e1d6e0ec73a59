"""The bank-impersonation text filter and the customer's approved models (SPEC §7)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from pombo.domain.text import fold

DEFAULT_PATTERNS: tuple[str, ...] = (
    # Banks and payment institutions. Names that are also everyday Portuguese words
    # ("inter", "pan", "safra", "original", "caixa") only count with "banco" or their
    # full name; "c6" reads as the words "c" + "bank" once its digit becomes a separator.
    "banco do brasil",
    "bradesco",
    "itau",
    "santander",
    "caixa economica",
    "caixa federal",
    "nubank",
    "banco inter",
    "sicoob",
    "sicredi",
    "banrisul",
    "c6 bank",
    "banco pan",
    "banco safra",
    "banco original",
    "banco bmg",
    "banco do nordeste",
    "btg pactual",
    "agibank",
    "mercado pago",
    "picpay",
    "pagbank",
    "pagseguro",
    # Banking authorities scammers name to sound official.
    "febraban",
    "banco central",
    "bacen",
    # Pix, named by SPEC §7. It blocks many honest messages; customers get through with
    # approved models. "chave pix" stays so the list still works if the operator drops "pix".
    "pix",
    "chave pix",
    # The usual bait: a blocked card or account, a purchase to dispute, data to "update".
    "cartao bloqueado",
    "cartao foi bloqueado",
    "cartao clonado",
    "conta bloqueada",
    "conta foi bloqueada",
    "conta suspensa",
    "acesso bloqueado",
    "compra nao reconhecida",
    "compra suspeita",
    "transacao suspeita",
    "transacao nao reconhecida",
    "token de seguranca",
    "central de seguranca",
    "atualize seus dados",
    "atualizar seus dados",
    "atualizacao cadastral",
)

# Leetspeak swaps of SPEC §7; every other digit becomes a separator.
_SWAPS = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "@": "a", "$": "s"})
_LETTER_RUN = re.compile(r"[^\W\d_]+")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_PLACEHOLDER_MIN, _PLACEHOLDER_MAX = 1, 60

Words = tuple[str, ...]


def split_words(text: str) -> Words:
    """Case-folded, accent-free, de-leeted words, split on anything that is not a letter."""
    return tuple(_LETTER_RUN.findall(fold(text).translate(_SWAPS)))


def join_single_letters(words: Words) -> Words:
    """Join runs of one-letter words: ('i', 't', 'a', 'u', 'bank') -> ('itau', 'bank')."""
    joined: list[str] = []
    run = ""
    for word in words:
        if len(word) == 1:
            run += word
            continue
        if run:
            joined.append(run)
            run = ""
        joined.append(word)
    if run:
        joined.append(run)
    return tuple(joined)


def normalize_words(text: str) -> Words:
    """The words of SPEC §7: split, then one-letter runs joined."""
    return join_single_letters(split_words(text))


class TextFilter:
    """Whole-word, consecutive matching of the operator's patterns against a body."""

    def __init__(self, patterns: Iterable[str]) -> None:
        """Normalise every pattern once and index it by its first word."""
        self._by_first: dict[str, set[Words]] = defaultdict(set)
        for pattern in patterns:
            words = normalize_words(pattern)
            if words:
                self._by_first[words[0]].add(words)

    def matches(self, text: str) -> bool:
        """True when any pattern's words appear consecutively as whole words in the text."""
        raw = split_words(text)
        joined = join_single_letters(raw)
        # The unjoined words are tried too: joining would swallow "c" in "o C6 Bank" ("oc").
        return self._found_in(joined) or (joined != raw and self._found_in(raw))

    def _found_in(self, words: Words) -> bool:
        """True when a pattern starts at some position of `words`."""
        for i, word in enumerate(words):
            for pattern in self._by_first.get(word, ()):
                if words[i : i + len(pattern)] == pattern:
                    return True
        return False


def _squash(text: str) -> str:
    """Folded, with runs of white space as one space and no space at either end."""
    return " ".join(fold(text).split())


@dataclass(frozen=True, slots=True)
class _Model:
    """A model as its literal parts; a placeholder sits between each pair of them."""

    literals: tuple[str, ...]

    @classmethod
    def compile(cls, model: str) -> _Model:
        """'Codigo {code} do Banco' -> ('codigo ', ' do banco')."""
        return cls(tuple(_PLACEHOLDER.split(_squash(model))))

    def matches(self, body: str) -> bool:
        """True when `body` (already squashed) fits the model."""
        # A set of reachable positions rather than a regex: '.{1,60}?' gaps separated by short
        # literals backtrack exponentially on a near-miss body.
        first, *rest = self.literals
        if not body.startswith(first):
            return False
        reachable = {len(first)}
        for literal in rest:
            reachable = _after_gap_and_literal(body, reachable, literal)
            if not reachable:
                return False
        return len(body) in reachable


def _after_gap_and_literal(body: str, starts: set[int], literal: str) -> set[int]:
    """Positions reachable from `starts` over one placeholder and then `literal`."""
    ends: set[int] = set()
    for start in starts:
        last = min(start + _PLACEHOLDER_MAX, len(body))
        for gap_end in range(start + _PLACEHOLDER_MIN, last + 1):
            if body.startswith(literal, gap_end):
                ends.add(gap_end + len(literal))
    return ends


class Models:
    """A customer's approved models; a body that fits one is never blocked."""

    def __init__(self, models: Iterable[str]) -> None:
        """Compile every model once."""
        self._models = tuple(_Model.compile(model) for model in models)

    def matches(self, text: str) -> bool:
        """True when the body equals some model, each placeholder standing for 1-60 chars."""
        if not self._models:
            return False
        body = _squash(text)
        return any(model.matches(body) for model in self._models)


def is_blocked(text: str, text_filter: TextFilter, models: Models) -> bool:
    """Code 270: the filter matches and no approved model does."""
    return text_filter.matches(text) and not models.matches(text)
