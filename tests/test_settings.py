"""`RemovalSettings`: one range per numeric setting, checked by the type and the command line.

The mechanism is what keeps future options safe: a numeric field added to RemovalSettings
without a range, or a range neither offered on the command line nor marked internal, fails
here rather than reaching a photo as NaN.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from engine.cli.main import build_parser
from engine.cli.options import NOT_ON_COMMAND_LINE, NUMBER_HELP
from engine.errors import SettingsError
from engine.removal.settings import RANGES, SEED_MAX, Range, RemovalSettings


def _numeric_fields() -> set[str]:
    return {f.name for f in dataclasses.fields(RemovalSettings)
            if f.type in ("int", "float")}


def test_every_numeric_setting_has_a_range_and_a_place_on_the_command_line():
    assert _numeric_fields() == set(RANGES)
    assert set(NUMBER_HELP) | set(NOT_ON_COMMAND_LINE) == set(RANGES)
    assert not set(NUMBER_HELP) & set(NOT_ON_COMMAND_LINE)
    defaults = RemovalSettings()
    for name, rng in RANGES.items():
        assert rng.low <= getattr(defaults, name) <= rng.high, name


@pytest.mark.parametrize("name", sorted(RANGES))
def test_each_range_refuses_what_lies_outside_it(name):
    rng = RANGES[name]
    below = rng.low - 1 if rng.whole else rng.low - 0.001
    above = rng.high + 1 if rng.whole else rng.high + 0.001
    for bad in (below, above, math.nan, math.inf, -math.inf, True, "3", None):
        with pytest.raises(SettingsError, match=name):
            RemovalSettings(**{name: bad})
    for good in (rng.low, rng.high):
        value = getattr(RemovalSettings(**{name: good}), name)
        assert value == good and type(value) is (int if rng.whole else float)


def test_numbers_of_other_kinds_become_plain_numbers():
    s = RemovalSettings(steps=np.int64(7), guidance=np.float32(3.5), seed=np.uint64(SEED_MAX))
    assert (s.steps, s.guidance, s.seed) == (7, 3.5, SEED_MAX)
    assert type(s.steps) is int and type(s.guidance) is float and type(s.seed) is int
    assert RemovalSettings(steps=12.0).steps == 12  # a whole float is a whole number
    with pytest.raises(SettingsError, match="whole number"):
        RemovalSettings(steps=12.5)
    with pytest.raises(SettingsError, match=r"not 10000000000000000000… \(401 digits\)"):
        RemovalSettings(seed=10**400)  # said briefly, and never through float (overflow)


def test_range_text_is_exact_for_whole_numbers():
    assert Range(0, SEED_MAX, whole=True).text() == "0–18446744073709551615"
    assert Range(0.01, 1.0).text() == "0.01–1"


def test_the_parser_offers_every_range_it_states():
    parser = build_parser()
    for name in NUMBER_HELP:
        rng = RANGES[name]
        low = str(int(rng.low)) if rng.whole else repr(rng.low)
        args = parser.parse_args(["remove", "p.png", "--mask", "m.png", "-o", "o.png",
                                  f"--{name}", low])
        assert getattr(args, name) == rng.low
