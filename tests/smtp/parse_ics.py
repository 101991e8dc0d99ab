"""Parses an iCalendar text from stdin with the `icalendar` package (an independent parser for the
calendar parts the Rust tests receive) and prints what the tests check as JSON: METHOD, and per
event UID, SEQUENCE, STATUS, DTSTART/DTEND in UTC (ISO 8601), URL, ORGANIZER and ATTENDEEs."""

import json
import sys
from datetime import timezone

from icalendar import Calendar

cal = Calendar.from_ical(sys.stdin.buffer.read())
out = {"method": str(cal.get("METHOD")), "events": []}
for ev in cal.walk("VEVENT"):
    start = ev.decoded("DTSTART")
    end = ev.decoded("DTEND")
    out["events"].append({
        "uid": str(ev.get("UID")),
        "sequence": int(ev.get("SEQUENCE")),
        "status": str(ev.get("STATUS")),
        "dtstart": start.astimezone(timezone.utc).isoformat(),
        "dtstart_tzinfo": start.tzinfo is not None,
        "dtend": end.astimezone(timezone.utc).isoformat(),
        "url": str(ev.get("URL")),
        "organizer": str(ev.get("ORGANIZER")),
        "attendees": [str(a) for a in (ev.get("ATTENDEE") if isinstance(ev.get("ATTENDEE"), list) else [ev.get("ATTENDEE")])],
    })
json.dump(out, sys.stdout)
