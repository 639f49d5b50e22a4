"""The opens-and-clicks page's buckets are the clock hours (or days) of the viewer's zone (issue 18):
a zone a half or three quarters of an hour off UTC, and a day that is 25 hours long, included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from application.queries import clock_slots, slot_of


def test_hours_of_a_half_hour_zone_start_on_its_own_clock() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    start = datetime(2026, 11, 14, 10, 57, 23, tzinfo=UTC)  # 16:27:23 in Kolkata
    slots = clock_slots(start, start + timedelta(hours=3), kolkata, "hour")
    assert [s.strftime("%H:%M") for s in slots] == ["16:00", "17:00", "18:00", "19:00"]
    assert slot_of(datetime(2026, 11, 14, 11, 29, tzinfo=UTC), kolkata, "hour").hour == 16
    assert slot_of(datetime(2026, 11, 14, 11, 30, tzinfo=UTC), kolkata, "hour").hour == 17


def test_a_quarter_hour_zone_and_every_slot_once_in_order() -> None:
    kathmandu = ZoneInfo("Asia/Kathmandu")  # +05:45
    start = datetime(2026, 11, 14, 0, 10, tzinfo=UTC)
    slots = clock_slots(start, start + timedelta(hours=48), kathmandu, "hour")
    assert len(slots) == 49 and len(set(slots)) == 49 and slots == sorted(slots)
    assert all(s.minute == 0 for s in slots)


def test_days_follow_the_zones_midnights_through_a_25_hour_day() -> None:
    berlin = ZoneInfo("Europe/Berlin")  # summer time ends on 25 October 2026
    start = datetime(2026, 10, 23, 21, 30, tzinfo=UTC)  # 23:30 on the 23rd in Berlin
    days = clock_slots(start, start + timedelta(hours=96), berlin, "day")
    assert [d.day for d in days] == [23, 24, 25, 26, 27]
    assert all(d.hour == 0 for d in days)
    hours = clock_slots(datetime(2026, 10, 24, 22, 0, tzinfo=UTC), datetime(2026, 10, 25, 23, 0, tzinfo=UTC), berlin, "hour")
    assert len(hours) == 25 - 1, "25 UTC hours of which two share the wall clock's 02:00 (one slot)"


def test_ticks_are_few_evenly_spaced_and_the_first_is_dated_whatever_the_start_hour() -> None:
    # issue 18's "10:57 / 22:57 with no dates"; and the clean-clone run at 20:05 found the first (dated) tick
    # forced one hour before the next regular one, the two labels overlapping: only the start's hour showed it
    from interface.web.pages_mailings import TICKS_AT_MOST, tick_labels

    moscow = ZoneInfo("Europe/Moscow")
    for start_hour in range(24):
        for hours in (1, 5, 12, 24, 25, 48, 49, 72, 73):
            start = datetime(2026, 12, 3, start_hour, 0, tzinfo=moscow)
            slots = [start + timedelta(hours=h) for h in range(hours)]
            labels = tick_labels(slots, False, "en")
            marked = [i for i, label in enumerate(labels) if label is not None]
            assert marked and len(marked) <= TICKS_AT_MOST, (start_hour, hours, labels)
            gaps = {b - a for a, b in zip(marked, marked[1:], strict=False)}
            assert len(gaps) <= 1, f"evenly spaced: {start_hour=} {hours=} {labels}"
            first = labels[marked[0]]
            assert first is not None and first.startswith("3 Dec") or first.startswith("4 Dec"), first
    days = [datetime(2026, 11, d, tzinfo=moscow) for d in range(1, 31)]
    labels = tick_labels(days, True, "ru")
    assert [label for label in labels if label][:2] == ["1 ноя", "8 ноя"]
