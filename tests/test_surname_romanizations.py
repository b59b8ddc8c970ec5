"""The table of romanizations of one Chinese or Korean surname (`indexer.surname_romanizations`): pairs that
must be related, pairs that must not be, and the table's shape (spellings, groups, symmetry, versions)."""

from __future__ import annotations

import hashlib
import itertools
import re

import pytest

from indexer import surname_romanizations as sr
from indexer.surname_asian_shares import ASIAN_SHARE
from indexer.surname_romanizations import TABLE_VERSION, groups, romanizations

RELATED = [
    # Korean
    ("LEE", "YI"),  # 이: family spelling, MR
    ("LEE", "RHEE"),  # 이: family spellings
    ("LEE", "RI"),  # 리: North Korean
    ("KIM", "GIM"),  # 김: MR, RR
    ("PARK", "PAK"),  # 박: family spelling, MR
    ("PARK", "BAK"),  # 박: RR
    ("CHOI", "CHOE"),  # 최
    ("JUNG", "CHUNG"),  # 정: family spellings
    ("JEONG", "CHUNG"),  # 정: RR, family spelling
    ("JEONG", "CHONG"),  # 정: RR, MR without the breve
    ("KWON", "GWON"),  # 권
    ("LIM", "IM"),  # 임
    ("YOON", "YUN"),  # 윤
    ("JANG", "CHANG"),  # 장: RR, MR
    ("NOH", "ROH"),  # 노
    ("SON", "SOHN"),  # 손
    ("BAEK", "PAIK"),  # 백
    ("YOO", "RYU"),  # 유/류
    # Chinese
    ("LI", "LEE"),  # 李: pinyin, Cantonese/Hokkien
    ("ZHOU", "CHOW"),  # 周: pinyin, Cantonese
    ("ZHOU", "CHOU"),  # 周: pinyin, Wade-Giles
    ("XU", "HSU"),  # 徐 and 許: pinyin, Wade-Giles
    ("XU", "KOH"),  # 許: Hokkien
    ("HUANG", "WONG"),  # 黃: Cantonese
    ("HUANG", "NG"),  # 黃: Hokkien/Teochew
    ("WANG", "WONG"),  # 王: Cantonese
    ("WANG", "ONG"),  # 王: Hokkien
    ("GUO", "KUO"),  # 郭: Wade-Giles
    ("GUO", "KWOK"),  # 郭: Cantonese
    ("LIN", "LAM"),  # 林: Cantonese
    ("LIN", "LIM"),  # 林: Hokkien
    ("ZHANG", "CHANG"),  # 張: Wade-Giles
    ("ZHANG", "CHEUNG"),  # 張: Cantonese
    ("ZHANG", "TEO"),  # 張: Hokkien/Teochew
    ("CHEN", "CHAN"),  # 陳: Cantonese
    ("CHEN", "TAN"),  # 陳: Hokkien/Teochew
    ("WU", "NG"),  # 吳: Cantonese
    ("WU", "GOH"),  # 吳: Hokkien
    # WU/WOO: related. WOO is a Cantonese spelling of 胡 HU (HK) and a family spelling of 吳 WU (Shanghai).
    ("WU", "WOO"),
    ("LIU", "LAU"),  # 劉: Cantonese
    ("YANG", "YEUNG"),  # 楊: Cantonese
    ("ZHENG", "CHENG"),  # 鄭: Wade-Giles
    ("CAI", "TSAI"),  # 蔡: Wade-Giles
    ("CAI", "CHUA"),  # 蔡: Hokkien
    ("XIE", "HSIEH"),  # 謝: Wade-Giles
    ("LUO", "LAW"),  # 羅: Cantonese
    ("LIANG", "LEUNG"),  # 梁: Cantonese
    ("YE", "YIP"),  # 葉: Cantonese
    ("ZENG", "TSANG"),  # 曾: Cantonese
    ("OUYANG", "AUYEUNG"),  # 歐陽: Cantonese
    ("SITU", "SZETO"),  # 司徒: Cantonese
    # across the sections: one spelling, two families
    ("CHONG", "ZHANG"),  # CHONG: Hakka 張 (and MR 정)
    ("CHOI", "CAI"),  # CHOI: Cantonese 蔡 (and Korean 최)
]

UNRELATED = [
    ("LEE", "LEWIS"),  # English surnames a few letters away
    ("KIM", "KING"),  # KING (金, anglicized) is left out
    ("PARK", "PARKER"),
    ("WANG", "HUANG"),  # 王 and 黃: only linked through WONG, and the relation is not transitive
    ("WANG", "NG"),  # likewise through WONG
    ("LEE", "LAI"),  # 李 and 黎, only linked through LI
    ("CHEN", "CHENG"),  # 陳 and 程/鄭
    ("LIN", "LING"),  # 林 and 凌: Fuzhounese LING for 林 is left out (it is 凌's pinyin)
    ("CHAN", "CHANG"),  # 陳/詹 and 張/장
    ("ZHANG", "ZHENG"),  # 張 and 鄭
    ("ZHOU", "ZHAO"),  # 周 and 趙
    ("CHEN", "CHUN"),  # CHUN (Hawaii) for 陳 is left out: CHUN is Korean 전/천 and Cantonese 秦
    ("KIM", "JIN"),  # Hokkien KIM for 金 is left out
    ("LEE", "YEE"),  # Korean YEE for 이 is left out: YEE is Cantonese 余
    ("HU", "HO"),  # 胡 and 何
    ("TAN", "TANG"),  # 陳/譚 and 唐/鄧
    ("SONG", "SUN"),  # 宋 and 孫
    ("XU", "SU"),  # 徐/許 and 蘇
    ("YANG", "YOUNG"),  # anglicized YOUNG for 楊 is left out
    ("KO", "KOO"),  # 高/柯/고 and 顧/구
    ("ZHANG", "JUNG"),  # 張 and 정, only linked through CHONG and CHEONG
    # Left out (a review of fuzzy-9): held mostly by people of other origins, or another Vietnamese surname.
    ("LONG", "LUNG"),  # 龍: LONG is 2.5% Asian in the 2010 census
    ("HAN", "HAHN"),  # 한: HAHN is 5.7% Asian
    ("DU", "TO"),  # 杜: Vietnamese Tô is 蘇
    ("TAO", "TO"),  # 陶: likewise
    ("XIA", "HA"),  # 夏: Vietnamese Hà is 何
    ("HEO", "HO"),  # 허: Vietnamese Hồ is 胡
    ("MAI", "MAK"),  # 麥: Vietnamese Mai is 梅
    ("XIONG", "HUNG"),  # 熊: XIONG in the US is the Hmong clan name
]


@pytest.mark.parametrize(("one", "other"), RELATED)
def test_related_both_ways(one: str, other: str) -> None:
    assert other in romanizations(one)
    assert one in romanizations(other)


@pytest.mark.parametrize(("one", "other"), UNRELATED)
def test_unrelated_both_ways(one: str, other: str) -> None:
    assert other not in romanizations(one)
    assert one not in romanizations(other)


@pytest.mark.parametrize("surname", ["SMITH", "GARCIA", "NGUYEN", "TANAKA", "", "lee", "Kim", "O", "I"])
def test_unlisted_surname_has_none(surname: str) -> None:
    assert romanizations(surname) == frozenset()


def test_a_spelling_of_two_characters_has_both_groups() -> None:
    assert romanizations("WONG") >= {"WANG", "ONG", "HUANG", "NG", "WEE"}
    assert romanizations("NG") >= {"HUANG", "WONG", "WU", "GOH"}


def test_every_spelling_is_uppercase_letters_at_least_two() -> None:
    for group in groups():
        for spelling in group:
            assert re.fullmatch(r"[A-Z]{2,}", spelling), spelling


def test_every_group_has_two_spellings_and_none_is_redundant() -> None:
    table = groups()
    assert all(len(group) >= 2 for group in table)
    for one, other in itertools.permutations(table, 2):
        assert not one <= other, (sorted(one), sorted(other))


def test_relation_is_symmetric_and_irreflexive_over_the_whole_table() -> None:
    spellings = frozenset().union(*groups())
    for spelling in spellings:
        others = romanizations(spelling)
        assert others, spelling
        assert spelling not in others
        assert others <= spellings
        for other in others:
            assert spelling in romanizations(other), (spelling, other)


def test_romanizations_is_the_union_of_its_groups() -> None:
    for spelling in frozenset().union(*groups()):
        union = frozenset().union(*(group for group in groups() if spelling in group))
        assert romanizations(spelling) == union - {spelling}


def test_sections_cover_the_commonest_surnames() -> None:
    assert len(sr._CHINESE_V1) >= 90
    assert len(sr._KOREAN_V1) >= 35


def test_versions() -> None:
    assert TABLE_VERSION in sr._VERSIONS
    assert romanizations("LEE") == romanizations("LEE", TABLE_VERSION)
    assert groups() is groups(TABLE_VERSION)  # cached


@pytest.mark.parametrize("version", [0, 2, -1, 99])
def test_unknown_version_is_refused(version: int) -> None:
    with pytest.raises(ValueError, match=rf"version {version}\b.*known: 1"):
        groups(version)
    with pytest.raises(ValueError, match=rf"version {version}\b"):
        romanizations("LEE", version)


def test_released_version_1_is_unchanged() -> None:
    """Scores depend on the table: version 1 is never edited. A new spelling goes into a new version."""
    canonical = "\n".join(sorted(" ".join(sorted(group)) for group in groups(1)))
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    assert (len(groups(1)), digest) == (138, "7732b94292e559ef5feaa80ac6292282ae65a5b120b6b28e962ad41eaf88aa32")


def test_every_spelling_has_its_census_share() -> None:
    """scripts/gen_surname_asian_shares.py writes one entry per spelling of every table: run it again when a
    table gains spellings (the matcher weighs ROMANIZED by the share)."""
    spellings = {spelling for version in sr._VERSIONS for group in groups(version) for spelling in group}
    assert spellings == set(ASIAN_SHARE)
    assert all(share is None or 0.0 <= share <= 1.0 for share in ASIAN_SHARE.values())
    assert ASIAN_SHARE["LEE"] == 0.422 and ASIAN_SHARE["ZHOU"] is not None and ASIAN_SHARE["RHIE"] is None
