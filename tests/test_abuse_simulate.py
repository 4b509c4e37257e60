"""The evaluation's traffic simulator: its numbers and listings behave like Norway's."""

from __future__ import annotations

import argparse
import random
from itertools import groupby

import pytest

from lookup.abuse.evaluate import _seeds, report, run
from lookup.abuse.holds import Hold
from lookup.abuse.simulate import Actor, Directory, Traffic, washer
from lookup.numbers import normalize
from tests.test_abuse_detectors import T0, event


def test_every_simulated_number_is_a_valid_norwegian_number() -> None:
    directory = Directory(seed=3)
    rng = random.Random(3)
    numbers = [directory.random_number(rng) for _ in range(2000)]
    numbers += [directory.town_number(rng, directory.fixed[:3], listed=True) for _ in range(200)]
    for number in numbers:
        assert normalize(f"+47{number:08d}") == f"{number:08d}"
    # About two in three numbers in use are mobile (10,000 blocks), the rest geographic.
    mobile = sum(directory.block_size(n) == 10_000 for n in numbers[:2000])
    assert 0.6 < mobile / 2000 < 0.7
    assert all(block // 1_000 in (4, 9) for block in directory.mobile)


def test_a_strided_walk_meets_listed_and_unlisted_numbers_mixed() -> None:
    # A coin linear in the number gave a stride-7 walk runs of ~100 equal outcomes.
    directory = Directory(seed=1)
    block = directory.fixed[0] * 1_000
    walk = [directory.listed(n) for n in range(block, block + 1_000, 7)]
    longest = max(len(list(run)) for _, run in groupby(walk))
    assert longest < 15
    assert 0.2 < sum(walk) / len(walk) < 0.9


def test_seed_ranges_and_lists_are_read_and_nonsense_is_refused() -> None:
    assert _seeds("1-4") == [1, 2, 3, 4]
    assert _seeds("2,5,9") == [2, 5, 9]
    for nonsense in ("one-eight", "5-3"):  # a reversed range ran the default month
        with pytest.raises(argparse.ArgumentTypeError, match="like 1-8"):
            _seeds(nonsense)


def test_a_flag_only_scraper_is_scored_on_its_flag_and_what_it_had_before() -> None:
    directory = Directory(seed=5)
    traffic = Traffic(directory, random.Random(5))
    washer(traffic, "scr-wash", per_day=(300, 300))
    results, _ = run(traffic.actors)
    result = results["scr-wash"]
    assert result.actor.flag_only and result.suspended_after is None
    # Flagged at the first lookup after its third working day (Monday to Wednesday).
    assert result.caught_after == result.flagged_after == 3 * 300 + 1
    # What it washed before compliance could know: the listings of its first three days.
    assert 0.8 * 900 < len(result.extracted) < 900
    assert report(results, directory).splitlines()[1].split()[:7] == [
        "list_washing",
        "scraper",
        "1",
        "0",
        "0",
        "1",
        "100%",
    ]
    # No false-positive rate for a scraper: a dash, not "nan%".
    assert report(results, directory).splitlines()[1].split()[7] == "-"


def test_a_scrapers_extraction_ends_where_its_block_is_held() -> None:
    # Every number of a geographic block listed, a lookup a second: its block is held at
    # the fourth, and what it looks up there after is refused (and still seen) until the
    # account is suspended.
    actor = Actor("sequential", "scr", scraper=True, scrape_from=T0)
    actor.events = [event(22202000 + i, i, "hit", account="scr") for i in range(40)]
    result = run([actor])[0]["scr"]
    assert (result.held_after, result.stopped_after) == (4, 4)
    assert result.holds == {Hold.of(22202000)}
    assert result.suspended_after is not None and result.suspended_after > 4
    assert sorted(result.extracted) == [f"+47{22202000 + i}" for i in range(4)]
