"""The codes a place of birth is judged against (indexer.edit_rules.place_of_birth): USPS codes where a US
birth can happen, and ISO 3166-1 alpha-2 country codes."""

from __future__ import annotations


def _codes(text: str) -> frozenset[str]:
    return frozenset(text.split())


# USPS codes of the states, DC and the inhabited territories: where a US birth can happen.
US_BIRTH_PLACES: frozenset[str] = _codes(
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND "
    "OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR GU VI AS MP"
)
# APO/FPO "states": mailing addresses of deployed units, never a place of birth.
MILITARY_MAIL = frozenset({"AA", "AE", "AP"})
# ISO 3166-1 alpha-2, all 249 assigned codes (pycountry is not a dependency).
COUNTRIES: frozenset[str] = _codes(
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV "
    "BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES "
    "ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE "
    "IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY "
    "MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU "
    "NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM "
    "SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE "
    "VG VI VN VU WF WS YE YT ZA ZM ZW"
)
# A birth in the US or in a territory with a USPS code goes in us_state, so that the same birthplace
# always compares the same (PlaceOfBirth.code()).
# (Not the intersection of the two lists: DE, CA, GA, IN ... are states and unrelated countries.)
US_AS_COUNTRY = frozenset({"US", "PR", "GU", "VI", "AS", "MP"})
