"""Business-time arithmetic: working hours, holidays, DST, zones and calendar config."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mailer.errors import ConfigError
from mailer.sla.calendar import DEFAULT_CALENDAR, Calendar, parse_calendar, parse_ics

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
HOUR = 3600.0
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
KEY = "sla.calendars.weekdays"


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
           *, fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=BERLIN, fold=fold)


def weekdays(zone: str = "Europe/Berlin", spec: str = "09:00-18:00", **extra: Any) -> Calendar:
    return parse_calendar("weekdays", {"timezone": zone, "hours": dict.fromkeys(WEEKDAYS, spec),
                                       **extra}, KEY)


def sundays(spec: str) -> Calendar:
    return parse_calendar("night", {"timezone": "Europe/Berlin", "hours": {"sun": spec}}, "k")


# --- 24/7 ------------------------------------------------------------------------------


def test_always_is_plain_arithmetic():
    start = datetime(2026, 3, 28, 22, 15, tzinfo=UTC)
    assert DEFAULT_CALENDAR.name == "24x7"
    assert DEFAULT_CALENDAR.add(start, 90_000.5) == start + timedelta(seconds=90_000.5)
    assert DEFAULT_CALENDAR.elapsed(start, start + timedelta(days=3)) == 3 * 86_400
    assert DEFAULT_CALENDAR.elapsed(start, start - timedelta(seconds=1)) == 0
    assert DEFAULT_CALENDAR.is_open(start)


def test_always_in_a_dst_zone_counts_real_seconds():
    calendar = parse_calendar("x", {"timezone": "Europe/Berlin", "always": True}, "k")
    assert calendar.elapsed(berlin(2026, 3, 29), berlin(2026, 3, 30)) == 23 * HOUR
    assert calendar.add(berlin(2026, 10, 25), 24 * HOUR) == berlin(2026, 10, 25, 23)


def test_results_are_utc_and_naive_input_is_refused():
    due = weekdays().add(berlin(2026, 6, 8, 10), HOUR)
    assert due.tzinfo is UTC and due == berlin(2026, 6, 8, 11)
    with pytest.raises(ValueError, match="naive"):
        weekdays().add(datetime(2026, 6, 8, 10), HOUR)
    with pytest.raises(ValueError, match="naive"):
        DEFAULT_CALENDAR.elapsed(datetime(2026, 6, 8), datetime(2026, 6, 9))
    with pytest.raises(ValueError, match=">= 0"):
        weekdays().add(berlin(2026, 6, 8, 10), -1)


# --- weekday calendar, Europe/Berlin --------------------------------------------------


@pytest.mark.parametrize(("start", "seconds", "due"), [
    (berlin(2026, 6, 5, 17), 4 * HOUR, berlin(2026, 6, 8, 12)),     # Friday late -> Monday
    (berlin(2026, 6, 5, 20), HOUR, berlin(2026, 6, 8, 10)),         # after hours
    (berlin(2026, 6, 6, 11), 2 * HOUR, berlin(2026, 6, 8, 11)),     # Saturday
    (berlin(2026, 6, 7, 23, 59), 60, berlin(2026, 6, 8, 9, 1)),     # Sunday before midnight
    (berlin(2026, 6, 9), HOUR, berlin(2026, 6, 9, 10)),             # exactly midnight
    (berlin(2026, 6, 8, 17), HOUR, berlin(2026, 6, 8, 18)),         # due at closing time
    (berlin(2026, 6, 8, 18), 1, berlin(2026, 6, 9, 9, 0, 1)),       # starts at closing time
    (berlin(2026, 6, 8, 9), 24 * HOUR, berlin(2026, 6, 10, 15)),    # 24h = 2.67 working days
    (berlin(2026, 6, 8, 12), 0, berlin(2026, 6, 8, 12)),
    (berlin(2026, 6, 6, 12), 0, berlin(2026, 6, 6, 12)),            # zero: no move to opening
])
def test_add_on_weekdays(start, seconds, due):
    assert weekdays().add(start, seconds) == due


def test_a_monday_holiday_pushes_to_tuesday():
    calendar = weekdays(holidays=["2026-06-08"])
    assert calendar.add(berlin(2026, 6, 5, 17), 4 * HOUR) == berlin(2026, 6, 9, 12)
    assert not calendar.is_open(berlin(2026, 6, 8, 12))
    assert calendar.elapsed(berlin(2026, 6, 5, 17), berlin(2026, 6, 9, 12)) == 4 * HOUR


def test_elapsed_across_a_weekend_counts_only_working_seconds():
    calendar = weekdays()
    assert calendar.elapsed(berlin(2026, 6, 5, 17), berlin(2026, 6, 8, 10)) == 2 * HOUR
    assert calendar.elapsed(berlin(2026, 6, 6, 8), berlin(2026, 6, 7, 20)) == 0
    assert calendar.elapsed(berlin(2026, 6, 1), berlin(2026, 6, 8)) == 5 * 9 * HOUR
    assert calendar.elapsed(berlin(2026, 6, 8, 12), berlin(2026, 6, 8, 11)) == 0


def test_is_open_includes_opening_and_excludes_closing():
    calendar = weekdays()
    assert calendar.is_open(berlin(2026, 6, 8, 9))
    assert not calendar.is_open(berlin(2026, 6, 8, 18))
    assert not calendar.is_open(berlin(2026, 6, 8, 8, 59, 59))
    assert not calendar.is_open(berlin(2026, 6, 6, 12))


def test_working_hours_to_midnight_join_the_next_day():
    calendar = parse_calendar("late", {"timezone": "Europe/Berlin",
                                       "hours": {"mon": "18:00-24:00", "tue": "00:00-06:00"}}, "k")
    assert calendar.hours[0] == (0, ((time(18), time(0)),))  # 24:00 is stored as time(0, 0)
    assert calendar.add(berlin(2026, 6, 8, 23), 2 * HOUR) == berlin(2026, 6, 9, 1)
    assert calendar.is_open(berlin(2026, 6, 8, 23, 59, 59))
    assert calendar.is_open(berlin(2026, 6, 9))
    assert calendar.elapsed(berlin(2026, 6, 8), berlin(2026, 6, 10)) == 12 * HOUR


def test_split_intervals_skip_the_lunch_break():
    calendar = weekdays(spec="09:00-12:00, 13:00-18:00")
    assert calendar.add(berlin(2026, 6, 8, 11), 2 * HOUR) == berlin(2026, 6, 8, 14)
    assert calendar.add(berlin(2026, 6, 8, 12, 30), 60) == berlin(2026, 6, 8, 13, 1)
    assert calendar.elapsed(berlin(2026, 6, 8, 11), berlin(2026, 6, 8, 14)) == 2 * HOUR
    assert not calendar.is_open(berlin(2026, 6, 8, 12, 30))


ROUND_TRIP_CALENDARS = [
    weekdays(),
    weekdays("America/New_York", "09:00-12:00,13:00-17:30", holidays=["2026-03-09"]),
    sundays("01:00-04:00"),
    parse_calendar("all", {"timezone": "Europe/Berlin",
                           "hours": dict.fromkeys((*WEEKDAYS, "sat", "sun"), "00:00-24:00")}, "k"),
    parse_calendar("sat", {"timezone": "Asia/Shanghai",
                           "hours": {"sat": "10:00-12:00,13:00-15:00"}}, "k"),
]


@pytest.mark.parametrize("calendar", ROUND_TRIP_CALENDARS, ids=lambda c: c.name)
def test_elapsed_inverts_add_for_random_starts(calendar):
    rng = random.Random(20260329)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(300):
        start = base + timedelta(seconds=rng.randrange(365 * 86_400))
        seconds = rng.choice([0, 1, 60, 3600, 4 * 3600, 32_400]) + rng.random() * 300_000
        due = calendar.add(start, seconds)
        assert due >= start
        assert calendar.elapsed(start, due) == pytest.approx(seconds, abs=1e-6)
        # `add` gives the earliest such instant: one microsecond less is not enough.
        if seconds:
            assert calendar.elapsed(start, due - timedelta(microseconds=1)) < seconds


# --- DST -------------------------------------------------------------------------------


def test_spring_forward_interval_counts_its_real_length():
    calendar = sundays("01:00-04:00")  # 2026-03-29: 02:00 CET jumps to 03:00 CEST
    assert calendar.elapsed(berlin(2026, 3, 28), berlin(2026, 3, 30)) == 2 * HOUR
    assert calendar.add(berlin(2026, 3, 29), HOUR) == berlin(2026, 3, 29, 3)
    assert calendar.add(berlin(2026, 3, 29), 2 * HOUR) == berlin(2026, 3, 29, 4)
    assert calendar.add(berlin(2026, 3, 29), 2 * HOUR + 1) == berlin(2026, 4, 5, 1, 0, 1)


def test_spring_forward_shifts_nonexistent_times_forward():
    assert sundays("02:00-03:00").elapsed(berlin(2026, 3, 28), berlin(2026, 3, 30)) == 0
    assert sundays("02:30-04:00").elapsed(berlin(2026, 3, 28), berlin(2026, 3, 30)) == 1800
    assert sundays("02:30-04:00").add(berlin(2026, 3, 29), 60) == berlin(2026, 3, 29, 3, 31)


def test_fall_back_interval_counts_the_repeated_hour():
    calendar = sundays("01:00-04:00")  # 2026-10-25: 03:00 CEST falls back to 02:00 CET
    assert calendar.elapsed(berlin(2026, 10, 24), berlin(2026, 10, 26)) == 4 * HOUR
    # Ambiguous local times never compare equal across zones (PEP 495): compare in UTC.
    first, second = (berlin(2026, 10, 25, 2, 30, fold=f).astimezone(UTC) for f in (0, 1))
    assert calendar.add(berlin(2026, 10, 25), 1.5 * HOUR) == first
    assert calendar.add(berlin(2026, 10, 25), 2.5 * HOUR) == second == first + timedelta(hours=1)
    assert calendar.add(berlin(2026, 10, 25), 4 * HOUR) == berlin(2026, 10, 25, 4)


def test_fall_back_ambiguous_bounds_take_first_start_and_last_end():
    calendar = sundays("02:00-02:30,02:30-03:00")
    assert calendar.elapsed(berlin(2026, 10, 24), berlin(2026, 10, 26)) == 2 * HOUR
    assert calendar.is_open(datetime(2026, 10, 25, 0, 45, tzinfo=UTC))  # 02:45 CEST
    assert calendar.is_open(datetime(2026, 10, 25, 1, 45, tzinfo=UTC))  # 02:45 CET


def test_round_the_clock_hours_in_a_dst_zone_equal_real_seconds():
    calendar = ROUND_TRIP_CALENDARS[3]
    for start, end in [(berlin(2026, 3, 28), berlin(2026, 3, 30)),
                       (berlin(2026, 10, 24, 12), berlin(2026, 10, 26, 3))]:
        # Same-zone subtraction is wall-clock arithmetic in Python, so subtract in UTC.
        real = (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds()
        assert real != (end - start).total_seconds()
        assert calendar.elapsed(start, end) == real
        assert calendar.add(start, real) == end
    assert calendar.elapsed(berlin(2026, 10, 25), berlin(2026, 10, 26)) == 25 * HOUR


def test_new_york_weekdays_across_the_dst_weekend():
    calendar = weekdays("America/New_York", "09:00-17:00")  # 2026-03-08 springs forward
    friday = datetime(2026, 3, 6, 16, tzinfo=NEW_YORK)
    due = calendar.add(friday, 2 * HOUR)
    assert due == datetime(2026, 3, 9, 10, tzinfo=NEW_YORK)
    assert due == datetime(2026, 3, 9, 14, tzinfo=UTC)  # EDT, UTC-4
    monday_close = datetime(2026, 3, 9, 17, tzinfo=NEW_YORK)
    assert calendar.elapsed(datetime(2026, 3, 6, 9, tzinfo=NEW_YORK), monday_close) == 16 * HOUR


# --- several zones ---------------------------------------------------------------------


def test_calendars_in_different_zones_see_the_same_instant_differently():
    shanghai = weekdays("Asia/Shanghai")
    sao_paulo = weekdays("America/Sao_Paulo")
    noon_utc = datetime(2026, 6, 1, 12, tzinfo=UTC)  # 20:00 in Shanghai, 09:00 in São Paulo
    assert not shanghai.is_open(noon_utc)
    assert sao_paulo.is_open(noon_utc)
    assert shanghai.add(noon_utc, HOUR) == datetime(2026, 6, 2, 2, tzinfo=UTC)
    assert sao_paulo.add(noon_utc, HOUR) == datetime(2026, 6, 1, 13, tzinfo=UTC)
    assert shanghai.elapsed(noon_utc, datetime(2026, 6, 2, 12, tzinfo=UTC)) == 9 * HOUR
    assert sao_paulo.elapsed(noon_utc, datetime(2026, 6, 2, 12, tzinfo=UTC)) == 9 * HOUR


# --- iCalendar holidays ----------------------------------------------------------------

ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
    "BEGIN:VEVENT\r\nUID:1\r\nDTSTART;VALUE=DATE:20261001\r\nDTEND;VALUE=DATE:20261008\r\n"
    "SUMMARY:National Day\r\n  Golden Week\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:2\r\nDTSTART;VALUE=DATE:20260101\r\nSUMMARY:New Year\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:3\r\nDTSTART:20260217\r\nDTEND:20260218\r\nSUMMARY:Spring Festival\r\n"
    "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:4\r\nDTSTART;TZID=Asia/Shanghai:20261009T090000\r\n"
    "DTEND;TZID=Asia/Shanghai:20261009T100000\r\nSUMMARY:Team meeting\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


def test_ics_all_day_events_become_holidays(tmp_path):
    path = tmp_path / "holidays.ics"
    path.write_text(ICS, encoding="utf-8")
    calendar = weekdays("Asia/Shanghai", holidays=["2026-12-25"], holidays_file=str(path))
    golden_week = {date(2026, 10, d) for d in range(1, 8)}
    assert calendar.holidays == golden_week | {date(2026, 1, 1), date(2026, 2, 17),
                                                date(2026, 12, 25)}
    wednesday = datetime(2026, 9, 30, 17, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert calendar.add(wednesday, 2 * HOUR) == datetime(2026, 10, 8, 10,
                                                         tzinfo=ZoneInfo("Asia/Shanghai"))


def test_ics_events_keep_summary_and_exclusive_end():
    events = parse_ics(ICS)
    assert [e.summary for e in events] == ["National Day Golden Week", "New Year",
                                           "Spring Festival"]
    assert list(events[1].days()) == [date(2026, 1, 1)]
    assert events[0].end == date(2026, 10, 8)


@pytest.mark.parametrize(("text", "message"), [
    ("BEGIN:VEVENT\nDTSTART;VALUE=DATE:20261301\nEND:VEVENT\n", "line 2: bad date"),
    ("BEGIN:VEVENT\nDTSTART;VALUE=DATE:20261001\nRRULE:FREQ=YEARLY\nEND:VEVENT\n", "line 3"),
    ("BEGIN:VEVENT\nDTSTART;VALUE=DATE:20261001\nDTEND;VALUE=DATE:20261001\nEND:VEVENT\n",
     "ends on or before"),
])
def test_bad_ics_is_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_ics(text)


# --- config errors ---------------------------------------------------------------------

GOOD = {"timezone": "Europe/Berlin", "hours": {"mon": "09:00-18:00"}}


@pytest.mark.parametrize(("raw", "key", "message"), [
    ({**GOOD, "hours": {"mon": "9-18"}}, f"{KEY}.hours.mon", "bad interval '9-18'"),
    ({**GOOD, "hours": {"mon": "09:00-24:30"}}, f"{KEY}.hours.mon", "bad interval"),
    ({**GOOD, "hours": {"tue": "18:00-09:00"}}, f"{KEY}.hours.tue", "ends before it starts"),
    ({**GOOD, "hours": {"wed": "09:00-12:00,11:00-13:00"}}, f"{KEY}.hours.wed", "overlap"),
    ({**GOOD, "hours": {"monday": "09:00-18:00"}}, f"{KEY}.hours.monday", "unknown day"),
    ({**GOOD, "hours": {"mon": 9}}, f"{KEY}.hours.mon", "expected a string"),
    ({**GOOD, "hours": {"sat": ""}}, f"{KEY}.hours", "no working hours"),
    ({"timezone": "Europe/Berlin"}, f"{KEY}.hours", "required"),
    ({**GOOD, "timezone": "Mars/Olympus"}, f"{KEY}.timezone", "unknown time zone"),
    ({**GOOD, "timezone": "../etc/passwd"}, f"{KEY}.timezone", "unknown time zone"),
    ({**GOOD, "holidays": ["2026-10-01", "2026-02-30"]}, f"{KEY}.holidays[1]", "bad date"),
    ({**GOOD, "holidays": "2026-10-01"}, f"{KEY}.holidays", "expected a list"),
    ({**GOOD, "holidays_file": "/nonexistent/holidays.ics"}, f"{KEY}.holidays_file",
     "cannot read"),
    ({**GOOD, "always": "yes"}, f"{KEY}.always", "true or false"),
    ({**GOOD, "always": True}, KEY, "cannot be combined"),
    ({**GOOD, "weekends": {}}, f"{KEY}.weekends", "unknown key"),
])
def test_config_errors_name_the_key_path(raw, key, message):
    with pytest.raises(ConfigError) as info:
        parse_calendar("weekdays", raw, KEY)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")
    assert message in str(info.value)


def test_a_bad_ics_file_names_the_key_path(tmp_path):
    path = tmp_path / "bad.ics"
    path.write_text("BEGIN:VEVENT\nDTSTART;VALUE=DATE:2026-10-01\nEND:VEVENT\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{KEY}\.holidays_file: .*line 2: bad date"):
        parse_calendar("weekdays", {**GOOD, "holidays_file": str(path)}, KEY)


def test_toml_dates_and_lists_of_intervals_are_accepted():
    calendar = parse_calendar("x", {"hours": {"fri": ["13:00-18:00", "09:00-12:00"]},
                                    "holidays": [date(2026, 12, 25)]}, "k")
    assert calendar.timezone == "UTC"
    assert calendar.hours == ((4, ((time(9), time(12)), (time(13), time(18)))),)
    assert calendar.holidays == frozenset({date(2026, 12, 25)})


def test_direct_construction_is_validated():
    with pytest.raises(ValueError, match="no working hours"):
        Calendar("empty")
    with pytest.raises(ValueError, match="overlap"):
        Calendar("bad", hours=((0, ((time(9), time(12)), (time(11), time(13)))),))
    with pytest.raises(ValueError, match="unknown time zone"):
        Calendar("bad", timezone="Nowhere/Else", always=True)
