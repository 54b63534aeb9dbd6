"""English words that carry no topic of their own."""

from __future__ import annotations

# Function words and question words carry no topic of their own.
STOPWORDS = frozenset(
    """a an the of in on at to for by with from and or but not no is are was were be been being am
    do does did done how many much what which who whom whose when where why that this these those
    it its they them their he him his she her we our you your i me my has have had there than as
    about into over under after before since per can could will would should may might must shall
    get got give given make made take taken any some all each every other such same so very more most
    less least also only just than then too up down out off again further once here both few own s t
    said say says according according""".split()
)
