"""Business-time arithmetic for SLA due dates: working hours, holidays, time zones.

A :class:`Calendar` answers three questions about UTC instants: when will ``n`` seconds of
business time have elapsed (:meth:`Calendar.add`), how much business time lies between two
instants (:meth:`Calendar.elapsed`) and is the desk open now (:meth:`Calendar.is_open`).

Config (one table per calendar under ``[sla.calendars]``)::

    [sla.calendars.weekdays]
    timezone = "Europe/Berlin"               # IANA zone, default "UTC"
    hours = { mon = "09:00-18:00", tue = "09:00-18:00", sat = "10:00-12:00,13:00-15:00" }
    holidays = ["2026-12-25", 2026-12-26]    # local dates; TOML dates or "YYYY-MM-DD"
    holidays_file = "/etc/mailer/holidays.ics"   # all-day VEVENTs are holidays

    [sla.calendars.round-the-clock]
    always = true                            # every instant counts

A missing day (or ``""``) is closed; a day may also be a list of interval strings. ``"24:00"``
(or ``"00:00"``) as an end means the midnight that ends the day and is stored as
``time(0, 0)``. Intervals never cross midnight: write
``mon = "22:00-24:00"`` and ``tue = "00:00-06:00"`` instead.

Time zones: the walk goes day by day in local time and converts each working interval's local
start and end to UTC for that date, so a shift that spans a DST change counts its real
length. A local time that does not exist (spring forward) is shifted forward by the gap
(PEP 495, ``fold=0``); an ambiguous one (fall back) starts an interval at its first
occurrence and ends it at its second, so the interval is as long as the wall clock says
plus the repeated hour. Intervals are clamped so no instant is ever counted twice.

Arithmetic runs on integer microseconds since the epoch, so results are exact to 1 µs.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailer.errors import ConfigError

log = logging.getLogger(__name__)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CALENDAR_KEYS = ("timezone", "hours", "holidays", "holidays_file", "always")

_US = 1_000_000
_DAY_US = 86_400 * _US
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.date().toordinal()
_ONE_US = timedelta(microseconds=1)
_ONE_DAY = timedelta(days=1)

Interval = tuple[time, time]
Hours = tuple[tuple[int, tuple[Interval, ...]], ...]
_Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Calendar:
    """Working hours in one time zone, minus holidays; or 24/7 when ``always``.

    ``hours`` maps a weekday (0 = Monday) to its working intervals ``(start, end)`` in local
    time, sorted and disjoint, ``start < end``; an ``end`` of ``time(0, 0)`` means midnight
    at the end of that day. ``holidays`` are local dates on which the desk is closed.
    """

    name: str
    timezone: str = "UTC"
    hours: Hours = ()
    holidays: frozenset[date] = frozenset()
    always: bool = False
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _week: tuple[tuple[_Span, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", _load_zone(self.timezone))
        object.__setattr__(self, "_week", _compile_week(self.hours))
        if not self.always and not any(self._week):
            raise ValueError(f"calendar {self.name!r} has no working hours and is not always")

    def add(self, start: datetime, seconds: float) -> datetime:
        """The first instant (UTC) at which ``seconds`` of business time have elapsed.

        Counting starts at ``start`` or at the next opening after it; ``seconds == 0``
        returns ``start`` itself. A result may fall exactly on a closing time.
        """
        start_us, need = _to_us(start), _duration_us(seconds)
        if self.always or need == 0:
            return _from_us(start_us + need)
        for begin, end in self._walk(start_us):
            if end - begin >= need:
                return _from_us(begin + need)
            need -= end - begin
        raise AssertionError("unreachable: a calendar walk never ends")

    def elapsed(self, start: datetime, end: datetime) -> float:
        """Business seconds between two instants (0 if ``end <= start``)."""
        start_us, end_us = _to_us(start), _to_us(end)
        if end_us <= start_us:
            return 0.0
        if self.always:
            return (end_us - start_us) / _US
        total = 0
        for begin, stop in self._walk(start_us):
            if begin >= end_us:
                break
            total += min(stop, end_us) - begin
        return total / _US

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` lies inside working hours (opening inclusive, closing exclusive)."""
        at_us = _to_us(at)
        if self.always:
            return True
        day = self._local_date(at_us)
        return any(begin <= at_us < end
                   for d in (day - _ONE_DAY, day) for begin, end in self._spans(d))

    def _walk(self, start_us: int) -> Iterator[_Span]:
        """Working spans from ``start_us`` on, in order, clamped so none overlap."""
        # Start a day early: with an ambiguous local midnight, yesterday's last span can end
        # after today's first one begins.
        day = self._local_date(start_us) - _ONE_DAY
        cursor = start_us
        while True:
            for begin, end in self._spans(day):
                begin = max(begin, cursor)
                if begin < end:
                    yield begin, end
                    cursor = end
            day += _ONE_DAY

    def _spans(self, day: date) -> list[_Span]:
        """The working intervals of local date ``day`` as UTC microsecond spans."""
        local = self._week[day.weekday()]
        if not local or day in self.holidays:
            return []
        midnight = (day.toordinal() - _EPOCH_ORDINAL) * _DAY_US
        offset = _offset_us(self._zone, day)
        if offset == _offset_us(self._zone, day + _ONE_DAY):
            # No UTC-offset change today: one subtraction converts every boundary.
            return [(midnight + s - offset, midnight + e - offset) for s, e in local]
        return [(_instant(self._zone, day, s, last=False), _instant(self._zone, day, e, last=True))
                for s, e in local]

    def _local_date(self, at_us: int) -> date:
        return _from_us(at_us).astimezone(self._zone).date()


# --- time helpers ----------------------------------------------------------------------


def _load_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def _to_us(at: datetime) -> int:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at.isoformat()}: calendars need aware datetimes")
    return (at - _EPOCH) // _ONE_US


def _from_us(at_us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=at_us)


def _duration_us(seconds: float) -> int:
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"business seconds must be finite and >= 0, not {seconds!r}")
    return round(seconds * _US)


def _offset_us(zone: ZoneInfo, day: date) -> int:
    """UTC offset at local midnight starting ``day`` (fold=0)."""
    offset = datetime(day.year, day.month, day.day, tzinfo=zone).utcoffset()
    return (offset or timedelta()) // _ONE_US


def _instant(zone: ZoneInfo, day: date, of_day_us: int, *, last: bool) -> int:
    """UTC microseconds of local ``day`` + ``of_day_us``, resolving DST gaps and overlaps.

    fold=0 shifts a nonexistent time forward and picks the first of two ambiguous ones;
    with ``last`` the later candidate wins, so an end time takes the second occurrence.
    """
    wall = (day.toordinal() - _EPOCH_ORDINAL) * _DAY_US + of_day_us
    local = datetime.combine(day, time(), tzinfo=zone) + timedelta(microseconds=of_day_us)
    first = wall - (local.utcoffset() or timedelta()) // _ONE_US
    second = wall - (local.replace(fold=1).utcoffset() or timedelta()) // _ONE_US
    return max(first, second) if last else first


def _time_us(value: time, *, end: bool) -> int:
    us = ((value.hour * 60 + value.minute) * 60 + value.second) * _US + value.microsecond
    return _DAY_US if end and us == 0 else us


def _compile_week(hours: Hours) -> tuple[tuple[_Span, ...], ...]:
    """``hours`` as seven tuples of (start, end) microseconds of the local day."""
    week: list[tuple[_Span, ...]] = [()] * 7
    for weekday, intervals in hours:
        if not 0 <= weekday <= 6 or week[weekday]:
            raise ValueError(f"weekday {weekday} is out of range or given twice")
        spans = sorted((_time_us(s, end=False), _time_us(e, end=True)) for s, e in intervals)
        if any(s >= e for s, e in spans) or any(a[1] > b[0] for a, b in pairwise(spans)):
            raise ValueError(f"weekday {weekday}: intervals are inverted or overlap")
        week[weekday] = tuple(spans)
    return tuple(week)


DEFAULT_CALENDAR = Calendar("24x7", always=True)


# --- config ----------------------------------------------------------------------------


def parse_calendar(name: str, raw: Mapping[str, Any], key: str) -> Calendar:
    """Validate one calendar table; every error names its key path under ``key``."""
    if not isinstance(raw, Mapping):
        raise ConfigError(key, "must be a table")
    for item in raw:
        if item not in CALENDAR_KEYS:
            raise ConfigError(f"{key}.{item}", f"unknown key (known: {', '.join(CALENDAR_KEYS)})")
    zone = _parse_zone(raw.get("timezone", "UTC"), f"{key}.timezone")
    always = raw.get("always", False)
    if not isinstance(always, bool):
        raise ConfigError(f"{key}.always", f"expected true or false, not {always!r}")
    if always:
        if any(k in raw for k in ("hours", "holidays", "holidays_file")):
            raise ConfigError(key, "always = true cannot be combined with hours or holidays")
        return Calendar(name, zone, always=True)
    if "hours" not in raw:
        raise ConfigError(f"{key}.hours", "required unless always = true")
    hours = _parse_hours(raw["hours"], f"{key}.hours")
    holidays = _parse_holidays(raw.get("holidays", []), f"{key}.holidays")
    if "holidays_file" in raw:
        holidays |= _read_holidays_file(raw["holidays_file"], f"{key}.holidays_file")
    return Calendar(name, zone, hours, frozenset(holidays))


def _parse_zone(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"expected an IANA zone name, not {value!r}")
    try:
        _load_zone(value)
    except ValueError as exc:
        raise ConfigError(key, str(exc)) from exc
    return value


def _parse_hours(raw: Any, key: str) -> Hours:
    if not isinstance(raw, Mapping):
        raise ConfigError(key, "must be a table like { mon = \"09:00-18:00\" }")
    hours = []
    for day, spec in raw.items():
        if day not in DAYS:
            raise ConfigError(f"{key}.{day}", f"unknown day (known: {', '.join(DAYS)})")
        intervals = _parse_day(spec, f"{key}.{day}")
        if intervals:
            hours.append((DAYS.index(day), intervals))
    if not hours:
        raise ConfigError(key, "no working hours; set always = true for a 24/7 calendar")
    return tuple(sorted(hours))


_INTERVAL = re.compile(r"(\d\d?):(\d\d)-(\d\d?):(\d\d)")


def _parse_day(spec: Any, key: str) -> tuple[Interval, ...]:
    """``"09:00-12:00,13:00-18:00"`` (or a list of such strings); ``""`` means closed."""
    parts = spec.split(",") if isinstance(spec, str) else spec
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
        raise ConfigError(key, f"expected a string like \"09:00-18:00\", not {spec!r}")
    texts = [p.replace(" ", "") for p in parts if p.strip()]
    spans = sorted((_parse_interval(text, key), text) for text in texts)
    for (prev, prev_text), (cur, text) in pairwise(spans):
        if _time_us(prev[1], end=True) > _time_us(cur[0], end=False):
            raise ConfigError(key, f"intervals {prev_text!r} and {text!r} overlap")
    return tuple(interval for interval, _ in spans)


def _parse_interval(text: str, key: str) -> Interval:
    match = _INTERVAL.fullmatch(text)
    if match is None:
        raise ConfigError(key, f"bad interval {text!r}")
    sh, sm, eh, em = (int(g) for g in match.groups())
    if sh > 23 or sm > 59 or em > 59 or eh > 24 or (eh == 24 and em):
        raise ConfigError(key, f"bad interval {text!r}")
    start, end = time(sh, sm), time(eh % 24, em)
    if _time_us(start, end=False) >= _time_us(end, end=True):
        raise ConfigError(key, f"interval {text!r} ends before it starts")
    return start, end


def _parse_holidays(raw: Any, key: str) -> set[date]:
    if not isinstance(raw, list):
        raise ConfigError(key, "expected a list of dates like \"2026-12-25\"")
    return {_parse_date(value, f"{key}[{i}]") for i, value in enumerate(raw)}


def _parse_date(value: Any, key: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\d", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(key, f"bad date {value!r} (expected YYYY-MM-DD)")


def _read_holidays_file(path: Any, key: str) -> set[date]:
    if not isinstance(path, str) or not path:
        raise ConfigError(key, f"expected a file path, not {path!r}")
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(key, f"cannot read {path!r}: {exc}") from exc
    try:
        events = parse_ics(text)
    except ValueError as exc:
        raise ConfigError(key, f"{path}: {exc}") from exc
    log.debug("calendar %s: %d all-day events from %s", key, len(events), path)
    return {day for event in events for day in event.days()}


# --- iCalendar ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IcsEvent:
    """One all-day VEVENT: local dates ``start`` up to ``end`` (exclusive)."""

    summary: str
    start: date
    end: date

    def days(self) -> Iterator[date]:
        """Every date the event covers."""
        for offset in range((self.end - self.start).days):
            yield self.start + timedelta(days=offset)


def parse_ics(text: str) -> tuple[IcsEvent, ...]:
    """The all-day VEVENTs of an iCalendar text; timed events are skipped.

    Reads DTSTART, DTEND (exclusive; default one day), DURATION in days or weeks and SUMMARY.
    Raises ``ValueError("line N: ...")`` for a bad date or a recurring all-day event, which
    this parser cannot expand and must not silently drop.
    """
    events: list[IcsEvent] = []
    stack: list[str] = []
    props: dict[str, tuple[int, str, str]] = {}
    for number, line in _unfolded(text):
        name, params, value = _property(line)
        if name == "BEGIN":
            stack.append(value.upper())
            if stack[-1] == "VEVENT":
                props = {}
        elif name == "END":
            if stack and stack.pop() == "VEVENT" and (event := _event(props, number)):
                events.append(event)
        elif stack and stack[-1] == "VEVENT":
            props[name] = (number, params, value)
    return tuple(events)


def _unfolded(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, logical line): RFC 5545 continuation lines start with a blank."""
    current, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if line[:1] in (" ", "\t"):
            current += line[1:]
            continue
        if current:
            yield start, current
        current, start = line, number
    if current:
        yield start, current


def _property(line: str) -> tuple[str, str, str]:
    head, _, value = line.partition(":")
    name, _, params = head.partition(";")
    return name.strip().upper(), params.upper(), value.strip()


def _event(props: dict[str, tuple[int, str, str]], end_line: int) -> IcsEvent | None:
    if "DTSTART" not in props:
        raise ValueError(f"line {end_line}: VEVENT without DTSTART")
    number, params, value = props["DTSTART"]
    if "T" in value.upper() and "VALUE=DATE" not in params.split(";"):
        return None  # a timed event (a meeting), not a holiday
    start = _ics_date(value, number)
    if "RRULE" in props:
        raise ValueError(f"line {props['RRULE'][0]}: recurring all-day events are not "
                         "supported; list each date")
    summary = props.get("SUMMARY", (0, "", ""))[2]
    return IcsEvent(summary, start, _event_end(props, start))


def _event_end(props: dict[str, tuple[int, str, str]], start: date) -> date:
    if "DTEND" in props:
        number, _, value = props["DTEND"]
        end = _ics_date(value, number)
    elif "DURATION" in props:
        number, _, value = props["DURATION"]
        end = start + _ics_days(value, number)
    else:
        return start + _ONE_DAY
    if end <= start:
        raise ValueError(f"line {number}: event ends on or before its start")
    return end


def _ics_date(value: str, number: int) -> date:
    if not re.fullmatch(r"\d{8}", value):
        raise ValueError(f"line {number}: bad date {value!r} (expected YYYYMMDD)")
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError as exc:
        raise ValueError(f"line {number}: bad date {value!r}") from exc


def _ics_days(value: str, number: int) -> timedelta:
    match = re.fullmatch(r"P(\d+)([DW])", value.upper())
    if match is None:
        raise ValueError(f"line {number}: unsupported all-day DURATION {value!r}")
    return timedelta(days=int(match[1]) * (7 if match[2] == "W" else 1))
