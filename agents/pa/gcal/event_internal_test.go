package gcal

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestEventFromWire(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name             string
		wire             wireEvent
		calendarZone     *time.Location
		start, end, zone string // RFC 3339 and the zone's name
		allDay           bool
		wantErr          string
	}{
		{
			name:  "timed, shown in its own zone",
			wire:  wireEvent{Start: wireTime{DateTime: "2025-03-07T09:00:00Z", TimeZone: "Asia/Tokyo"}, End: wireTime{DateTime: "2025-03-07T10:00:00Z"}},
			start: "2025-03-07T18:00:00+09:00", end: "2025-03-07T19:00:00+09:00", zone: "Asia/Tokyo",
		},
		{
			name:         "timed without a zone, shown in the calendar's",
			wire:         wireEvent{Start: wireTime{DateTime: "2025-03-07T09:00:00Z"}, End: wireTime{DateTime: "2025-03-07T10:00:00Z"}},
			calendarZone: tokyo,
			start:        "2025-03-07T18:00:00+09:00", end: "2025-03-07T19:00:00+09:00", zone: "Asia/Tokyo",
		},
		{
			name:  "an unknown zone falls back to UTC",
			wire:  wireEvent{Start: wireTime{DateTime: "2025-03-07T09:00:00+01:00", TimeZone: "Mars/Olympus_Mons"}, End: wireTime{DateTime: "2025-03-07T10:00:00+01:00"}},
			start: "2025-03-07T08:00:00Z", end: "2025-03-07T09:00:00Z", zone: "UTC",
		},
		{
			name:  "timed without an end is an instant",
			wire:  wireEvent{Start: wireTime{DateTime: "2025-03-07T09:00:00Z"}},
			start: "2025-03-07T09:00:00Z", end: "2025-03-07T09:00:00Z", zone: "UTC",
		},
		{
			name:         "all day, midnights in the calendar's zone",
			wire:         wireEvent{Start: wireTime{Date: "2025-03-07"}, End: wireTime{Date: "2025-03-09"}},
			calendarZone: tokyo,
			start:        "2025-03-07T00:00:00+09:00", end: "2025-03-09T00:00:00+09:00", zone: "Asia/Tokyo", allDay: true,
		},
		{
			name:  "all day without an end is one day",
			wire:  wireEvent{Start: wireTime{Date: "2025-03-07"}},
			start: "2025-03-07T00:00:00Z", end: "2025-03-08T00:00:00Z", zone: "UTC", allDay: true,
		},
		{name: "no start", wire: wireEvent{ID: "x"}, wantErr: `event "x": start: no dateTime or date`},
		{name: "a start that is no time", wire: wireEvent{ID: "x", Start: wireTime{DateTime: "9am"}}, wantErr: `event "x": start: parsing time`},
		{name: "a date that is no date", wire: wireEvent{ID: "x", Start: wireTime{Date: "07/03/2025"}}, wantErr: `event "x": start date: parsing time`},
		{name: "an end that is no date", wire: wireEvent{ID: "x", Start: wireTime{Date: "2025-03-07"}, End: wireTime{Date: "soon"}}, wantErr: `event "x": end date`},
		{name: "an end that is no time", wire: wireEvent{ID: "x", Start: wireTime{DateTime: "2025-03-07T09:00:00Z"}, End: wireTime{DateTime: "later"}}, wantErr: `event "x": end: parsing time`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := fromWire(tc.wire, tc.calendarZone)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := e.Start.Format(time.RFC3339); got != tc.start {
				t.Errorf("start %s, want %s", got, tc.start)
			}
			if got := e.End.Format(time.RFC3339); got != tc.end {
				t.Errorf("end %s, want %s", got, tc.end)
			}
			if e.Start.Location().String() != tc.zone || e.AllDay != tc.allDay {
				t.Errorf("zone %s all-day %v, want %s %v", e.Start.Location(), e.AllDay, tc.zone, tc.allDay)
			}
		})
	}
}

func TestEventRoundTrip(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []Event{
		{ID: "abc12", Summary: "Call", Description: "d", Location: "l", Start: time.Date(2025, 3, 7, 18, 0, 0, 0, tokyo), End: time.Date(2025, 3, 7, 18, 45, 0, 0, tokyo), TimeZone: "Asia/Tokyo"},
		{Summary: "Holiday", Start: time.Date(2025, 3, 7, 0, 0, 0, 0, tokyo), End: time.Date(2025, 3, 10, 0, 0, 0, 0, tokyo), AllDay: true},
	} {
		w, err := e.toWire()
		if err != nil {
			t.Fatal(err)
		}
		back, err := fromWire(w, tokyo)
		if err != nil {
			t.Fatal(err)
		}
		if !back.Start.Equal(e.Start) || !back.End.Equal(e.End) {
			t.Errorf("%+v came back as %+v", e, back)
		}
		back.Start, back.End, e.Start, e.End = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if back != e {
			t.Errorf("%+v came back as %+v", e, back)
		}
	}
	if _, err := (Event{}).toWire(); !errors.Is(err, ErrInvalid) {
		t.Errorf("an event without a start: err = %v, want ErrInvalid", err)
	}
}
