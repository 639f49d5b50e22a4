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
