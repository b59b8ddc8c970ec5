"""The compound cells of the tracing file format (docs/TRACING_FORMAT.md): aliases, place of birth and lists.

Each has a short text form a person types in a CSV cell ('SURNAME, GIVEN MIDDLE[, SUFFIX]' aliases joined
by ';', 'US-ST/City' or 'CC/City', items joined by ';') and a JSON form for what the short one cannot hold.
This module reads the parts of those forms and writes a value back in the short form whenever it reads
back as the same value; it is separate from `indexer.fileformat_rows` (one cell at a time, with its
violations) because these forms are their own small grammar, used in both directions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from indexer.model import PersonName, PlaceOfBirth

ALIAS_KEYS: tuple[str, ...] = ("surname", "given_name", "middle_name", "suffix")
PLACE_KEYS: tuple[str, ...] = ("us_state", "country", "city")
ALIAS_FORMS = "an alias must be 'SURNAME, GIVEN MIDDLE[, SUFFIX]' or an object with " + ", ".join(ALIAS_KEYS)


def _joinable(items: Iterable[str], separator: str) -> bool:
    """The items can be written separated by `separator` and read back as they are."""
    items = tuple(items)
    return not (items and items[0].startswith(("[", "{"))) and all(
        item == item.strip() and separator not in item and "\n" not in item and "\r" not in item for item in items
    )


def is_code(text: str) -> bool:
    """Two or three ASCII letters: the shape of a state or country code (which ones exist is semantic)."""
    return 2 <= len(text) <= 3 and text.isascii() and text.isalpha()


def object_parts(value: object, keys: tuple[str, ...]) -> list[str] | None:
    """The stripped string values of an object with only these keys (absent or null = ""), else None."""
    if not isinstance(value, dict) or not set(value) <= set(keys):
        return None
    parts = [value.get(key) for key in keys]
    if not all(part is None or isinstance(part, str) for part in parts):
        return None
    return [part.strip() if isinstance(part, str) else "" for part in parts]


def alias_from_text(text: str) -> PersonName | None:
    parts = text.split(",")
    if len(parts) > 3 or ";" in text:
        return None
    rest = parts[1].split(None, 1) if len(parts) > 1 else []
    return PersonName(
        surname=parts[0].strip(),
        given_name=rest[0] if rest else "",
        middle_name=rest[1].strip() if len(rest) > 1 else "",
        suffix=parts[2].strip() if len(parts) > 2 else "",
    )


def alias_from_object(value: object) -> PersonName | None:
    parts = object_parts(value, ALIAS_KEYS)
    return None if parts is None else PersonName(*parts)


def _alias_text(name: PersonName) -> str | None:
    """The 'SURNAME, GIVEN MIDDLE[, SUFFIX]' form, or None when it would not read back as the same name."""
    fields = (name.surname, name.given_name, name.middle_name, name.suffix)
    if not _joinable(fields, ",") or any(";" in part for part in fields) or not name.surname:
        return None
    if len(name.given_name.split()) > 1 or (name.middle_name and not name.given_name):
        return None
    text = name.surname
    rest = " ".join(part for part in (name.given_name, name.middle_name) if part)
    if rest or name.suffix:
        text += ", " + rest
    return text + ", " + name.suffix if name.suffix else text


def _object(keys: tuple[str, ...], parts: tuple[str, ...]) -> dict[str, str]:
    return {key: part for key, part in zip(keys, parts, strict=True) if part}


def format_aliases(names: tuple[PersonName, ...]) -> str:
    texts = [_alias_text(name) for name in names]
    if all(texts):
        return "; ".join(text for text in texts if text)
    objects = [_object(ALIAS_KEYS, (n.surname, n.given_name, n.middle_name, n.suffix)) for n in names]
    return json.dumps(objects, ensure_ascii=False)


def format_strings(items: tuple[str, ...]) -> str:
    if all(items) and _joinable(items, ";"):
        return "; ".join(items)
    return json.dumps(list(items), ensure_ascii=False)


def format_place(place: PlaceOfBirth | None) -> str:
    if place is None:
        return ""
    code = ""
    if place.us_state and not place.country and is_code(place.us_state):
        code = "US-" + place.us_state
    elif place.country and not place.us_state and is_code(place.country):
        code = place.country
    if code and _joinable((place.city,), "\0"):
        return f"{code}/{place.city}" if place.city else code
    return json.dumps(_object(PLACE_KEYS, (place.us_state, place.country, place.city)), ensure_ascii=False)
