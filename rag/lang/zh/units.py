"""What figures in Chinese news count and measure: units grouped by what they count.

A figure carries its unit (``386 名``, ``500 余万元``, ``89.6%``); a question that names a unit
(``多少名``) or a thing (``人数``, ``资金``) is answered by a figure of the same group.
"""

from __future__ import annotations

import re

from rag.lang.tables import words

# Units a number can carry, grouped by what they count (tables units_<group> of rules.toml);
# a unit of no group (units_other) counts alone.
UNIT_GROUPS: dict[str, tuple[str, ...]] = {
    group: words("zh", f"units_{group}")
    for group in (
        "people",
        "money",
        "percent",
        "points",
        "days",
        "hours",
        "orgs",
        "cases",
        "items",
        "sessions",
        "area",
        "years",
    )
}
OTHER_UNITS = words("zh", "units_other")
# Units that only count (386 名, 32 起, 38 个): an English answer gives the number alone.
COUNTING_UNITS = tuple(u for group in ("people", "orgs", "cases", "items") for u in UNIT_GROUPS[group])
# Longest first, so that 平方公里 is read before 公里.
ALL_UNITS = sorted({u for units in UNIT_GROUPS.values() for u in units} | set(OTHER_UNITS), key=lambda u: (-len(u), u))
UNIT = "|".join(re.escape(u) for u in ALL_UNITS)
# The unit an index stands at (17847.99点).
INDEX_POINTS = ("点",)
_CURRENCY_SUFFIX = "人民币"
_NUMERAL = r"[\d零〇一二两三四五六七八九十百千万亿]"


def group_of(unit: str) -> tuple[str, ...]:
    """The units that count what ``unit`` counts (``名`` -> 人次, 名, 人, 位, 户); itself alone
    when it is in no group."""
    return next((units for units in UNIT_GROUPS.values() if unit in units), (unit,))


def number_unit(span: str) -> str:
    """The unit a number span ends with ('' when bare); 60亿元人民币 ends with 元."""
    span = span.rstrip().removesuffix(_CURRENCY_SUFFIX)
    return next((u for u in ALL_UNITS if span.endswith(u)), "")


def counts_in(units: tuple[str, ...], text: str) -> bool:
    """Does the text give a figure (digits or Chinese numerals) in one of the units?"""
    return re.search(rf"{_NUMERAL}\s*(?:余|多)?\s*(?:{'|'.join(map(re.escape, units))})", text) is not None


# Scales of Chinese amounts (33.17万, 2.5亿, 3万亿), longest first; 余 (more than) may stand
# before them (500余万).
SCALES = {"万亿": 10**12, "百万": 10**6, "千万": 10**7, "万": 10**4, "亿": 10**8}
APPROXIMATELY = "余"
# What 1700多家 and 500余名 say after the number: more than it.
MORE_THAN = ("多", "余")
# The scales a small model turns into "million" or "billion" by mistake (33.17万 is not 33.17 million).
MYRIADS = ("万", "亿", "万亿")
