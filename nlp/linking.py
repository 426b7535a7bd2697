"""Company linking: find the watchlist companies a text mentions, by name, alias or ticker.

One Aho-Corasick automaton (pyahocorasick) over every company's names, Chinese names, aliases and
tickers finds all mentions in a single pass. Text and keys are compared after the same
normalisation (NFKC, case-folded, whitespace collapsed), so full-width and upper/lower case do not
matter. A key in Latin script only counts at word boundaries ('Meridian' in "Meridian's" but not in
"Meridianx"; ticker 'AURM' in "$AURM" but not in "AURMX"); a key with Chinese characters counts
anywhere, as Chinese has no spaces between words. A key found inside a longer key's mention belongs
to that mention ('平安' in '平安银行' links only the company named 平安银行). A ticker of letters only
(no digits) counts only written in capitals or as a cashtag, so that tickers such as ON or AI do not
match the words 'on' and 'ai' ("ON", "ＯＮ", "$on" link ON Semiconductor; "on Monday" does not).
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import ahocorasick
import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from finsentinel.errors import ConfigError
from finsentinel.schema import normalise_text

log = logging.getLogger(__name__)

DEFAULT_WATCHLIST = "watchlist.yaml"


class Company(BaseModel):
    """One watchlist entry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: StrictStr = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="stable slug, e.g. aurora-motors")
    name: StrictStr = Field(min_length=1)
    name_zh: StrictStr | None = None
    aliases: tuple[StrictStr, ...] = ()
    tickers: tuple[StrictStr, ...] = ()

    def keys(self) -> tuple[str, ...]:
        """Every string that names this company in text."""
        names = (self.name, self.name_zh or "", *self.aliases, *self.tickers)
        return tuple(n for n in names if n.strip())


class _WatchlistFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    companies: tuple[Company, ...] = ()


@dataclass(frozen=True)
class Watchlist:
    """The companies to link, read from YAML (see the packaged ``nlp/watchlist.yaml``)."""

    companies: tuple[Company, ...]
    source: str = "<memory>"

    @classmethod
    def load(cls, path: str | Path | None = None) -> Watchlist:
        """Read ``path``, or the packaged demo watchlist when None; :class:`ConfigError` on a bad file."""
        if path is None:
            text = resources.files("nlp").joinpath(DEFAULT_WATCHLIST).read_text(encoding="utf-8")
            return cls.from_yaml(text, source=f"packaged nlp/{DEFAULT_WATCHLIST}")
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"cannot read watchlist {path}: {exc}; set nlp.watchlist to a readable YAML file "
                "or leave it empty for the demo watchlist"
            ) from exc
        return cls.from_yaml(text, source=str(path))

    @classmethod
    def from_yaml(cls, text: str, source: str = "<string>") -> Watchlist:
        """Parse watchlist YAML; :class:`ConfigError` names the bad entry and field."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"watchlist {source} is not valid YAML: {exc}") from exc
        return cls.from_dict(data if data is not None else {}, source)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> Watchlist:
        """Build from parsed YAML (``{"companies": [...]}``)."""
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"watchlist {source}: expected a mapping with a 'companies' list, got {type(data).__name__}"
            )
        try:
            parsed = _WatchlistFile.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
            )
            raise ConfigError(
                f"watchlist {source} is invalid: {problems} (each company needs id and name; "
                'aliases and tickers are lists of strings: quote numeric tickers like "600998")'
            ) from exc
        ids = [c.id for c in parsed.companies]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ConfigError(f"watchlist {source}: company ids must be unique, repeated: {duplicates}")
        return cls(companies=parsed.companies, source=source)


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return (
        0x3400 <= code <= 0x9FFF
        or 0xF900 <= code <= 0xFAFF
        or 0x20000 <= code <= 0x2FA1F
        or 0x3040 <= code <= 0x30FF
        or 0xAC00 <= code <= 0xD7AF
    )


def _is_word_char(char: str) -> bool:
    """A character that would continue a Latin word or ticker (letters, digits, underscore; not CJK)."""
    return (char.isalnum() or char == "_") and not _is_cjk(char)


def _is_letter_ticker(key: str) -> bool:
    """A ticker of Latin letters without digits (ON, AI, AAPL.O): it could be an ordinary word."""
    return any(ch.isalpha() and not _is_cjk(ch) for ch in key) and not any(ch.isdigit() for ch in key)


class _CasedText:
    """A text as :func:`normalise_text` sees it but not case-folded, indexed like the folded text."""

    def __init__(self, text: str) -> None:
        self.text = " ".join(unicodedata.normalize("NFKC", text).split())
        # case folding maps each character on its own, sometimes to several ('ß' -> 'ss')
        self.origin = [i for i, ch in enumerate(self.text) for _ in ch.casefold()]

    def in_capitals(self, start: int, stop: int) -> bool:
        """Whether folded positions ``start:stop`` hold no lower-case letter in the original text."""
        span = self.text[self.origin[start] : self.origin[stop - 1] + 1]
        return not any(ch.islower() for ch in span)


class EntityLinker:
    """Links texts to watchlist company ids."""

    def __init__(self, watchlist: Watchlist) -> None:
        self.watchlist = watchlist
        self._ids = {c.id for c in watchlist.companies}
        self._by_key: dict[str, set[str]] = {}
        capitals: dict[str, set[str]] = {}  # key -> companies for which it is only a letter ticker
        for company in watchlist.companies:
            names = {normalise_text(n) for n in company.keys() if n not in company.tickers}
            for key in company.keys():
                normalised = normalise_text(key)
                self._by_key.setdefault(normalised, set()).add(company.id)
                if key in company.tickers and _is_letter_ticker(normalised) and normalised not in names:
                    capitals.setdefault(normalised, set()).add(company.id)
        self._automaton = ahocorasick.Automaton()
        for key, ids in self._by_key.items():
            strict = capitals.get(key, set())
            self._automaton.add_word(
                key, (key, any(_is_cjk(ch) for ch in key), tuple(sorted(ids - strict)), tuple(sorted(strict)))
            )
        if self._by_key:
            self._automaton.make_automaton()

    def link(self, text: str, hints: Iterable[str] = ()) -> tuple[str, ...]:
        """Sorted ids of the companies mentioned in ``text`` or named by ``hints``.

        A hint is a company id, or any name, alias or ticker of a company (``$TICKER`` too).
        """
        found: set[str] = set()
        for hint in hints:
            found.update(self._from_hint(hint))
        if not self._by_key or not text:
            return tuple(sorted(found))
        normalised = normalise_text(text)
        cased: _CasedText | None = None
        mentions: list[tuple[int, int, tuple[str, ...]]] = []
        for end, (key, cjk, ids, capital_ids) in self._automaton.iter(normalised):
            start = end - len(key) + 1
            before = normalised[start - 1] if start > 0 else " "
            if not cjk:
                after = normalised[end + 1] if end + 1 < len(normalised) else " "
                if _is_word_char(before) or _is_word_char(after):
                    continue
            if capital_ids:
                cased = cased or _CasedText(text)
                if before == "$" or key.startswith("$") or cased.in_capitals(start, end + 1):
                    ids += capital_ids
            if ids:
                mentions.append((start, end, ids))
        # A key inside a longer mention is part of that name ('平安' in '平安银行'), not a mention of its own.
        reach = -1
        for _start, end, ids in sorted(mentions, key=lambda m: (m[0], -m[1])):
            if end > reach:
                found.update(ids)
                reach = end
        return tuple(sorted(found))

    def _from_hint(self, hint: str) -> set[str]:
        if hint in self._ids:
            return {hint}
        key = normalise_text(hint).lstrip("$")
        ids = self._by_key.get(key, set())
        if not ids:
            log.debug("entity hint %r names no watchlist company", hint)
        return set(ids)
