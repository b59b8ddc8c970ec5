"""Romanizations of one East Asian surname: the spellings under which one person's Chinese or Korean surname
reaches the index, written by different clerks, in different decades and from different dialects (LEE / YI /
RHEE, ZHOU / CHOW, XU / HSU, HUANG / WONG, GUO / KUO / KWOK). The matcher gives them their own level, "another
romanization of the same surname", below an exact surname and above a stranger's.

One group is one surname character (hanzi, or the hangul syllable of a Korean surname: its hanja share their
spellings) within one language family. A spelling of two characters is in both groups (WONG: 王 WANG and
黃 HUANG in Cantonese), and `romanizations` is the union of the groups a spelling is in, so it is symmetric but
not transitive: WANG and HUANG are not related, though each is related to WONG. Homophones whose spellings
coincide (唐/湯, 何/賀) share a line; a character whose spellings are all in another line (汪, 伍, Korean 구,
진, 추) gets none, as it would relate nothing new.

Chinese, about the 100 commonest surnames of the mainland lists and a few more common overseas (洪, 翁,
麥, 歐陽, 司徒, 詹, 柯, 游): Hanyu Pinyin (py, Lu written LYU as on PRC passports); Wade-Giles (WG,
apostrophes and umlauts dropped: CH'EN CHEN, HSU); Cantonese, the Hong Kong government's spellings and those
of Singapore and Malaysia (Can; Taishanese of the older American families, Tsn); Hokkien and Teochew of
Singapore, Malaysia and the Philippines (Hok, Teo); Hakka (Hak).
Korean, the surnames of about the 50 commonest with more than one spelling: Revised Romanization (RR, one
letter surnames I, O, U left out), McCune-Reischauer with breves and apostrophes dropped (MR: CHONG, SO, HO,
SONG), North Korean (NK: RI, RIM, RO, RYU, JONG, JON) and the family spellings of passports (fam: LEE, PARK,
CHOI, RHEE, SOHN, PAIK). A surname with a single spelling (오 OH, 송 SONG, 홍 HONG, 남 NAM, 하 HA,
차 CHA, 우 WOO, 민 MIN, 채 CHAE, 원 WON, 함 HAM) has no line.

Left out on purpose, since a false link makes two people look alike, which is worse than a missed one:
- Spellings seen only rarely or that we could not attest well: Korean KEEM, BAHK, PAKK, YEE and LIE for 이,
  JOE for 조, BACK and BAIK for 백, LEEM and LYM for 임; Chinese CHUN for 陳 (Hawaii; CHUN is Korean 전/천
  and Cantonese 秦), KIM for 金 (Hokkien; would tie Korean KIM to JIN and CHIN), OH for 胡 (Hokkien; Korean
  오), SIA for 謝, TEE for 鄭, LOO for 呂, FOO for 胡 and 傅, CHUI for 徐 and 崔, KANG for 江, CHEN and CHAN for
  曾 and CHANG for 鄭 (Hakka, reported by one source only; they would tie 曾 and 鄭 to 陳 and 張), ENG (黃 and
  吳 both).
- Anglicized forms that are ordinary English surnames of their own: YOUNG (楊), KING (金), BACK (백); and
  spellings held in the US mostly by people of other origins, whose relation could only ever weigh less
  than a typo's (`indexer.surname_asian_shares`): LONG and LUNG (龍; 2.5% and 15% Asian in the 2010 census),
  HAHN (한; 5.7%).
- Spellings that are another character's surname in Vietnamese, whose bearers in the US are mostly
  Vietnamese: TO (Tô is 蘇, not 杜 or 陶), HA (Hà is 何, not 夏), HO for Korean 허 (Hồ is 胡), MAI (Mai is
  梅, not 麥). CAO (曹's pinyin; Vietnamese Cao is 高) is kept: it is 曹's only mainland spelling.
- Systems of small communities whose spellings are other surnames' pinyin: Fuzhounese (LING 林, TING 陳,
  TIONG 張); Indonesian Dutch spellings (OEI, LIEM, TJOA, KWEE); Macau Portuguese (VONG, IEONG); Gwoyeu
  Romatzyh (CHERN, HWANG for 黃); the pinyin typing form LV for 呂.
- Vietnamese (Hoang and Huynh are two surnames, not two spellings of one) and Japanese, out of scope; and
  XIONG, 熊's pinyin, which in the US is nearly always the Hmong clan name (98% Asian in the 2010 census, so
  the share cannot discount it), never written HUNG.

A released table is never changed, since scores depend on it: a new spelling goes into a new version (a new
entry in `_VERSIONS`, e.g. version 1's lines plus the new ones) and `TABLE_VERSION` moves to it.
"""

from __future__ import annotations

import functools
import re

TABLE_VERSION = 1  # a released table is never changed: additions go into a new version (scores depend on it)

_CHINESE_V1: tuple[str, ...] = (
    "WANG WONG ONG HENG",  # 王 (also 汪, WANG WONG): py WG; Can Hak; Hok; Teo
    "LI LEE",  # 李: py WG; Can Hok Teo Hak
    "ZHANG CHANG CHEUNG CHEONG CHONG TEO TEOH",  # 張: py; WG; Can (HK, SG/MY); Hak; Hok Teo
    "LIU LAU LOW LIEW",  # 劉: py WG; Can Hok; Teo Hok; Hak
    "CHEN CHAN TAN CHIN",  # 陳: py WG; Can; Hok Teo; Hak Tsn
    "YANG YEUNG YEO YEOH YONG",  # 楊: py WG; Can; Hok Teo (YEOH Penang); Hak Can
    "HUANG WONG NG OOI WEE UY",  # 黃: py WG; Can Hak; Teo Hok; Hok (UY Philippines)
    "ZHAO CHAO CHIU TEOH",  # 趙: py; WG; Can; Hok
    "ZHOU CHOU CHOW CHAU CHEW",  # 周: py; WG; Can (CHAU HK); Hok Teo
    "WU WOO NG GOH GO",  # 吳 (also 伍, WU NG): py WG; Can (Shanghai families); Can Teo; Hok (GO Philippines)
    "XU HSU TSUI CHEE",  # 徐: py; WG; Can; Hok Teo Hak
    "SUN SUEN",  # 孫: py WG; Can
    "MA MAH",  # 馬: py WG Can; Hok
    "ZHU CHU CHOO",  # 朱: py; WG Can; Hok Teo Hak
    "HU WU WOO AW",  # 胡: py WG; Can; Can; Hok Hak
    "GUO KUO KWOK QUEK KWEK",  # 郭: py; WG; Can; Hok; Teo
    "HE HO",  # 何, 賀: py; WG Can Hok
    "GAO KAO KO KOH",  # 高: py; WG; Can; Hok Teo
    "LIN LAM LUM LIM",  # 林: py WG; Can; Tsn; Hok Teo Hak
    "LUO LO LAW LOH",  # 羅: py; WG Can; Can; Hok Teo
    "ZHENG CHENG TAY TEH",  # 鄭: py; WG Can; Hok Teo; Hok
    "LIANG LEUNG LEONG NEO",  # 梁: py WG; Can (HK; SG/MY); Hok Teo
    "XIE HSIEH TSE CHIA CHEAH SEAH",  # 謝: py; WG; Can; Teo Hak; Hok
    "SONG SUNG SOONG",  # 宋: py; WG Can; older family spelling
    "TANG TONG",  # 唐, 湯: py WG; Can
    "XU HSU HUI KOH KHOR",  # 許: py; WG; Can; Hok Teo
    "HAN HON",  # 韓: py WG; Can
    "FENG FUNG FOONG",  # 馮: py WG; Can; Can Hak
    "DENG TENG TANG",  # 鄧: py; WG; Can
    "CAO TSAO TSO",  # 曹: py; WG; Can
    "PENG PANG",  # 彭: py WG; Can
    "ZENG TSENG TSANG",  # 曾: py; WG; Can
    "XIAO HSIAO SIU SEOW",  # 蕭 (肖): py; WG; Can; Hok Teo
    "TIAN TIEN TIN",  # 田: py; WG; Can
    "DONG TUNG",  # 董: py; WG Can
    "YUAN YUEN",  # 袁: py WG; Can
    "PAN POON PHUA",  # 潘: py WG; Can; Hok Teo
    "JIANG CHIANG CHEUNG",  # 蔣: py; WG; Can
    "CAI TSAI CHOI CHOY TSOI CHUA CHUAH",  # 蔡: py; WG; Can; Hok Teo (CHUAH Penang)
    "YU YEE",  # 余: py WG; Can Tsn
    "DU TU TOH",  # 杜: py; WG; Hok Teo (Can TO left out: Vietnamese Tô is 蘇)
    "YE YEH YIP IP YAP YEAP",  # 葉: py; WG; Can; Hak Hok (YEAP Penang)
    "CHENG CHING",  # 程: py WG; Can
    "SU SO SOO",  # 蘇: py WG; Can; Hok Hak
    "WEI NGAI",  # 魏: py WG; Can
    "LU LYU LUI",  # 呂: py WG; py (passports); Can
    "DING TING",  # 丁: py; WG Can
    "REN JEN YAM",  # 任: py; WG; Can
    "SHEN SHUM SIM",  # 沈: py WG; Can; Hok Teo
    "YAO YIU",  # 姚: py WG; Can
    "LU LO",  # 盧: py WG; Can
    "JIANG CHIANG KEUNG",  # 姜: py; WG; Can
    "CUI TSUI",  # 崔: py; WG Can
    "ZHONG CHUNG",  # 鍾: py; WG Can
    "TAN TAM",  # 譚: py WG; Can
    "LU LUK LOKE",  # 陸: py WG; Can; Can (SG/MY)
    "JIN CHIN KAM",  # 金: py; WG; Can
    "SHI SHIH SHEK",  # 石: py; WG; Can
    "LIAO LIU LIOW",  # 廖: py WG; Can; Hok
    "JIA CHIA",  # 賈: py; WG
    "XIA HSIA",  # 夏: py; WG (Can HA left out: Vietnamese Hà is 何)
    "WEI WAI",  # 韋: py WG; Can
    "FANG FONG",  # 方: py WG; Can Hak
    "BAI PAI PAK",  # 白: py; WG; Can
    "ZOU TSOU CHAU",  # 鄒: py; WG; Can
    "MENG MANG",  # 孟: py WG; Can
    "HSIUNG HUNG",  # 熊: WG; Can (py XIONG left out: in the US it is the Hmong clan name)
    "QIN CHIN CHUN",  # 秦: py; WG; Can
    "QIU CHIU YAU KHOO",  # 邱 (丘): py; WG; Can; Hok
    "JIANG CHIANG KONG",  # 江: py; WG; Can
    "YIN WAN",  # 尹: py WG; Can
    "XUE HSUEH SIT",  # 薛: py; WG; Can
    "YAN YEN YIM",  # 閻, 嚴: py; WG; Can
    "DUAN TUAN TUEN",  # 段: py; WG; Can
    "LEI LUI LOUIE",  # 雷: py WG; Can; Tsn
    "HOU HAU",  # 侯: py WG; Can
    "SHI SHIH SZE",  # 史: py; WG; Can
    "LI LAI",  # 黎: py WG; Can
    "GU KU KOO",  # 顧: py; WG; Can (also Korean 구: RR, MR, fam)
    "MAO MO",  # 毛: py WG; Can
    "GONG KUNG",  # 龔: py; WG Can
    "SHAO SHIU",  # 邵: py WG; Can
    "WAN MAN",  # 萬: py WG; Can
    "QIAN CHIEN CHIN",  # 錢: py; WG; Can
    "WU MO",  # 武: py WG; Can
    "DAI TAI",  # 戴: py; WG Can
    "MO MOK",  # 莫: py WG; Can
    "KONG KUNG HUNG",  # 孔: py; WG; Can
    "XIANG HSIANG HEUNG",  # 向: py; WG; Can
    "HONG HUNG ANG",  # 洪: py; WG Can; Hok Teo
    "WENG YUNG",  # 翁: py WG; Can
    "WEN WAN",  # 溫: py WG; Can
    "OUYANG AUYEUNG OWYANG",  # 歐陽: py WG; Can; Tsn
    "SITU SZETO SEETO",  # 司徒: py; Can; Can
    "OU AU",  # 區, 歐: py WG; Can
    "KUANG KWONG",  # 鄺: py WG; Can
    "GAN KAN KAM",  # 甘: py; WG; Can
    "KE KO KWA KUA",  # 柯: py; WG; Hok Teo
    "ZHAN CHAN CHIM CHIAM",  # 詹: py; WG; Can; Hok
    "YOU YU YAU",  # 游: py; WG; Can
)

_KOREAN_V1: tuple[str, ...] = (
    "KIM GIM",  # 김: MR NK fam; RR
    "LEE YI RI RHEE RHIE",  # 이/리: fam; MR; NK; fam (RR I left out)
    "PARK PAK BAK",  # 박: fam; MR NK; RR
    "CHOI CHOE CHOY",  # 최: fam; RR MR NK; fam
    "JEONG JUNG CHUNG CHONG JONG JOUNG CHEONG",  # 정: RR; fam; fam; MR; NK; fam; fam
    "KANG GANG",  # 강: MR NK fam; RR
    "JO CHO",  # 조: RR NK; MR fam
    "YUN YOON YOUN",  # 윤: RR MR NK; fam; fam
    "JANG CHANG",  # 장: RR NK; MR fam
    "IM LIM YIM RIM",  # 임/림: RR MR; fam; fam; NK
    "SEO SUH SO",  # 서: RR; fam; MR NK
    "SHIN SIN",  # 신: fam; RR MR NK
    "GWON KWON KWEON",  # 권: RR; MR NK fam; fam
    "HWANG WHANG",  # 황: RR MR NK; fam
    "AN AHN",  # 안: RR MR NK; fam
    "JEON JUN CHUN CHON JON",  # 전: RR; fam; fam; MR; NK
    "YU YOO RYU RYOO",  # 유/류: RR MR; fam; NK fam; fam
    "GO KO KOH",  # 고: RR; MR NK; fam
    "MUN MOON",  # 문: RR MR NK; fam
    "YANG RYANG",  # 양/량: RR MR; NK
    "SON SOHN",  # 손: RR MR NK; fam
    "BAE PAE",  # 배: RR fam; MR NK
    "BAEK PAEK PAIK",  # 백: RR; MR NK; fam
    "HEO HUH HUR",  # 허: RR; fam; fam (MR NK HO left out: Vietnamese Hồ is 胡, Cantonese HO 何)
    "SIM SHIM",  # 심: RR MR NK; fam
    "NO NOH ROH RO RHO",  # 노/로: RR MR; fam; fam; NK; fam
    "GWAK KWAK",  # 곽: RR; MR NK fam
    "SEONG SUNG SONG",  # 성: RR; fam; MR NK
    "JU JOO CHU",  # 주: RR NK; fam; MR (추 CHU CHOO is in 朱's line)
    "JI CHI",  # 지: RR NK; MR
    "EOM UM UHM OM",  # 엄: RR; fam; fam; MR NK
    "CHEON CHON CHUN",  # 천: RR; MR NK; fam
    "BANG PANG",  # 방: RR; MR NK
    "HYEON HYUN HYON",  # 현: RR; fam; MR NK
    "BYEON BYUN PYON",  # 변: RR; fam; MR NK
    "YEOM YUM YOM",  # 염: RR; fam; MR NK
    "NA RA",  # 나/라: RR MR; NK
    "NAMGUNG NAMKOONG NAMGOONG",  # 남궁: RR MR; fam; fam
)

# Every released table, by version: its groups as lines of spellings.
_VERSIONS: dict[int, tuple[str, ...]] = {1: _CHINESE_V1 + _KOREAN_V1}

_SPELLING = re.compile(r"[A-Z]{2,}")


def groups(version: int = TABLE_VERSION) -> tuple[frozenset[str], ...]:
    """The groups of table `version`, each the spellings of one surname (Chinese first, then Korean)."""
    return _groups(version)


@functools.cache
def _groups(version: int) -> tuple[frozenset[str], ...]:
    try:
        lines = _VERSIONS[version]
    except KeyError:
        known = ", ".join(str(v) for v in sorted(_VERSIONS))
        raise ValueError(f"no surname romanization table version {version!r} (known: {known})") from None
    parsed: list[frozenset[str]] = []
    for line in lines:
        spellings = line.split()
        bad = [s for s in spellings if not _SPELLING.fullmatch(s)]
        if bad or len(set(spellings)) < 2 or len(set(spellings)) != len(spellings):
            raise ValueError(f"surname romanization table {version}: malformed group {line!r}")
        parsed.append(frozenset(spellings))
    return tuple(parsed)


@functools.cache
def _index(version: int) -> dict[str, frozenset[str]]:
    """Each spelling of table `version` with the union of its groups, itself left out."""
    related: dict[str, set[str]] = {}
    for group in groups(version):
        for spelling in group:
            related.setdefault(spelling, set()).update(group - {spelling})
    return {spelling: frozenset(others) for spelling, others in related.items()}


def romanizations(surname: str, version: int = TABLE_VERSION) -> frozenset[str]:
    """The other romanizations of `surname` (an exact key: uppercase A-Z, no spaces) in table `version`:
    the union of every group it belongs to, without itself. Empty for a surname the table does not list."""
    return _index(version).get(surname, frozenset())
