"""Spanish given names' short forms (hypocorisms): PEPE for JOSE, PACO and PANCHO for FRANCISCO, CHUY for
JESUS, LUPE for GUADALUPE, LOLA for DOLORES. The `nicknames` package (`indexer.analysis.nickname_canonicals`)
lists English names' forms only and knows none of these, though they are how many people of Mexican, Central
American, Puerto Rican and Cuban families are known: a record filed under PACO HERNANDEZ is the FRANCISCO
HERNANDEZ an adjudicator asks for. The matcher (fuzzy-12, `Matcher.hypocorisms`) gives such a pair the NICKNAME
level, as it gives BILL / WILLIAM, and a FUZZY or PID_QUALIFIED query also retrieves by the other forms'
keys (`indexer.match_keys_query.hypocorism_keys`): a record is keyed by its own given name only.

A line is a full name (an exact key, `indexer.normalize.exact_key`: JOSE MARIA is JOSEMARIA, TOÑO is TONO)
and its short forms. `full_forms` reads a name with the full names it is a short form of; two names agree
when those meet: PEPE / JOSE, PEPE / CHEPE (both JOSE's), BETO / ROBERTO, but not ALBERTO / ROBERTO (each a
full name of BETO's, neither a form of the other). Only the names written are read (a given name and the
words of one of several: MARIA GUADALUPE / LUPE), never the nicknames package's full forms of them.

Left out on purpose, since a false link makes two people look alike, which is worse than a missed one:
- Translations: JUAN is not JOHN, nor GUILLERMO WILLIAM, nor JOSE JOSEPH (a person's record under the other
  language's name is another name; the Jaro-Winkler of the close ones, JOSE / JOSEPH, still counts).
- Short forms of many names, of either sex, or that are names of their own more than forms: TITO (ALBERTO,
  HECTOR, ERNESTO, ...), CHELO for MARCELO (CONSUELO's, of the other sex), CHELA (GRACIELA's, MARCELA's,
  ANGELA's), LICHA (ALICIA's, LETICIA's), CHEO (JOSE's, ELISEO's), CHUS (mostly MARIA JESUS's), CHAVA (also
  the Hebrew women's name), CHALO (GONZALO's, ROSALIO's), CUCA (REFUGIO's, SOCORRO's), MEMO for MANUEL,
  NENA, GÜERO and other nicknames that are not forms of a name, FRANCO and NICO. LUPE, LOLA and RUDY are
  names of their own too, but in the US mostly as forms of GUADALUPE, DOLORES and RODOLFO (or RUDOLPH): kept.
- The diminutives in -ITO and -ITA of a full name that keep its stem (PEDRITO, ANITA, JOSELITO, JUANITA):
  they would double the table, and score as other names (ANITA / ANA is another given name); those of a short
  form are listed (PAQUITO, CONCHITA, LUPITA).
- Forms the nicknames package knows already for these names (TONY for ANTONIO, ALEX for ALEJANDRO).

A released table is never changed, since scores depend on it: a new form goes into a new version (a new
entry in `_VERSIONS`, e.g. version 1's lines plus the new ones) and `TABLE_VERSION` moves to it.
"""

from __future__ import annotations

import functools

TABLE_VERSION = 1  # a released table is never changed: additions go into a new version (scores depend on it)

_SPANISH_V1: tuple[str, ...] = (
    # Men's names
    "JOSE: PEPE PEPITO CHEPE CHEPITO",
    "JOSEMARIA: CHEMA",
    "FRANCISCO: PACO PANCHO CURRO PAQUITO CISCO",
    "JESUS: CHUY CHUCHO",
    "IGNACIO: NACHO",
    "GUILLERMO: MEMO GUILLE",
    "EDUARDO: LALO",
    "ALBERTO: BETO",
    "ROBERTO: BETO",
    "HUMBERTO: BETO",
    "NORBERTO: BETO",
    "ANTONIO: TONO TONITO",
    "MANUEL: MANOLO MANOLITO",
    "ENRIQUE: QUIQUE KIKE",
    "RAFAEL: RAFA",
    "FERNANDO: NANDO",
    "HERNANDO: NANDO",
    "ADOLFO: FITO",
    "RODOLFO: FITO RUDY",
    "ALEJANDRO: JANDRO",
    "SALVADOR: CHAVO",
    "LORENZO: LENCHO",
    "GREGORIO: GOYO",
    "VICENTE: CHENTE",
    "SANTIAGO: SANTI CHAGO",
    "LUIS: LUCHO WICHO",
    "JUAN: JUANCHO",
    "PEDRO: PERICO",
    "ARMANDO: MANDO",
    "GUADALUPE: LUPE LUPITA",
    # Women's names
    "ROSARIO: CHARO CHAYO CHAYITO",
    "DOLORES: LOLA LOLITA",
    "CONCEPCION: CONCHA CONCHITA CONCHI",
    "CONSUELO: CHELO",
    "JOSEFA: PEPA PEPITA",
    "FRANCISCA: PACA PAQUITA PANCHA PAQUI",
    "ISABEL: CHABELA CHABE",
    "SOLEDAD: CHOLE",
    "HORTENSIA: TENCHA",
    "MERCEDES: MECHE MERCHE",
    "YOLANDA: YOLI",
    "PILAR: PILI",
)

_VERSIONS: dict[int, tuple[str, ...]] = {1: _SPANISH_V1}


@functools.cache
def _full_names(version: int) -> dict[str, frozenset[str]]:
    """Each short form of table `version` with the full names it stands for (ValueError for no such table)."""
    if version not in _VERSIONS:
        raise ValueError(f"no table of given names' short forms has version {version} (known: {sorted(_VERSIONS)})")
    found: dict[str, set[str]] = {}
    for line in _VERSIONS[version]:
        full, _, short_forms = line.partition(":")
        for short in short_forms.split():
            found.setdefault(short, set()).add(full)
    return {short: frozenset(fulls) for short, fulls in found.items()}


@functools.cache
def full_names(version: int = TABLE_VERSION) -> frozenset[str]:
    """The full names of table `version` (those its short forms stand for)."""
    return frozenset().union(*_full_names(version).values())


@functools.cache
def _members(version: int) -> frozenset[str]:
    """Every name of table `version`: full names and short forms."""
    fulls = _full_names(version)
    return frozenset(fulls).union(*fulls.values())


@functools.lru_cache(maxsize=16_384)
def full_forms(given: str, version: int = TABLE_VERSION) -> frozenset[str]:
    """`given` (an exact key) with every full name table `version` lists it as a short form of: PEPE ->
    {PEPE, JOSE}, BETO -> {BETO, ALBERTO, ROBERTO, HUMBERTO, NORBERTO}, JOSE -> {JOSE}."""
    return frozenset({given}) | _full_names(version).get(given, frozenset())


@functools.lru_cache(maxsize=16_384)
def forms_of(names: frozenset[str], version: int = TABLE_VERSION) -> frozenset[str]:
    """`names` (the given names one name writes: its given name and each word of one of several, never the
    nicknames package's full forms of them, whose ambiguities would chain with the table's) with the full
    forms of each (`full_forms`): two names agree as short and full form where theirs meet."""
    return frozenset().union(*(full_forms(name, version) for name in names))


@functools.lru_cache(maxsize=4_096)
def related(given: str, version: int = TABLE_VERSION) -> frozenset[str]:
    """Every other name of table `version` that agrees with `given` as short and full form: its full names,
    their short forms, and its own short forms (PEPE -> JOSE, PEPITO, CHEPE, ...; JOSE -> PEPE, PEPITO, ...).
    Empty for a name not in the table."""
    if given not in _members(version):
        return frozenset()
    mine = full_forms(given, version)
    return frozenset(
        name for name in _members(version) if name != given and not mine.isdisjoint(full_forms(name, version))
    )


def touches(names: frozenset[str], version: int = TABLE_VERSION) -> bool:
    """Whether any of `names` is in table `version` (else none of them agrees with a name through it)."""
    return not _members(version).isdisjoint(names)
