"""One lab per visitor (gandemo.lab.sessions): bounded, expiring, independent."""

from __future__ import annotations

import time

import pytest

from gandemo.lab import LabConfig
from gandemo.lab.sessions import LabRegistry, LabsFullError


def test_each_visitor_has_their_own_lab() -> None:
    labs = LabRegistry(max_labs=3, idle_s=60)
    a, b = labs.get("alice"), labs.get("bob")
    assert a is not b and labs.get("alice") is a
    a.lab.run(5)
    assert (a.lab.step, b.lab.step) == (5, 0)
    assert len(labs) == 2


def test_a_full_server_says_so_and_frees_a_slot_when_a_page_closes() -> None:
    labs = LabRegistry(max_labs=2, idle_s=60)
    labs.get("a")
    labs.get("b")
    with pytest.raises(LabsFullError, match="All 2 labs"):
        labs.get("c")
    labs.get("a")  # an existing visitor still gets theirs
    labs.drop("a")
    assert labs.get("c").lab.step == 0


def test_idle_labs_expire_and_stop_playing() -> None:
    labs = LabRegistry(max_labs=1, idle_s=0.2)
    first = labs.get("a", LabConfig(seed=3))
    first.playing = True
    assert first.lab.config.seed == 3
    time.sleep(0.3)
    labs.get("b")  # the idle one made room
    assert first.playing is False and labs.peek("a") is None


def test_the_live_view_slows_down_only_when_many_labs_play() -> None:
    from gandemo.ui.lab_tab import FRAME_INTERVAL_S, frame_interval

    assert frame_interval(1) == FRAME_INTERVAL_S <= 0.2  # at least 5 frames a second for a few labs
    assert frame_interval(200) > frame_interval(20) >= FRAME_INTERVAL_S
    labs = LabRegistry(max_labs=3, idle_s=60)
    labs.get("a").playing = True
    labs.get("b")
    assert labs.playing() == 1
