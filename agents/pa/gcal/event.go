package gcal

import (
	"fmt"
	"strings"
	"time"
)

// Event is a calendar event as the assistant sees it.
type Event struct {
	// ID is Google's event ID. Left empty on insert, Google picks one; set, it must be 5 to
	// 1024 characters of a-v and 0-9, and inserting it twice fails instead of duplicating.
	ID          string
	Summary     string
	Description string
	Location    string
	// Start and End bound the event, End excluded. An all-day event runs from the midnight
	// starting its first day to the midnight ending its last, in its zone; on insert, a End
	// that is not a midnight ends the event with End's day. A zero End on insert means one
	// hour after Start, or one day for an all-day event.
	Start time.Time
	End   time.Time
	// AllDay marks an event on whole days (a birthday) rather than between two instants.
	AllDay bool
	// TimeZone is the IANA zone the event is scheduled in ("Europe/Paris"); empty means the
	// calendar's. Times read from Google are given in this zone, or the calendar's.
	TimeZone string
	// HTMLLink opens the event in Google Calendar; set by Google, ignored on insert.
	HTMLLink string
}

// wireTime is the API's EventDateTime: a date for all-day events, an instant otherwise.
type wireTime struct {
	Date     string `json:"date,omitempty"`
	DateTime string `json:"dateTime,omitempty"`
	TimeZone string `json:"timeZone,omitempty"`
}

// wireEvent is the part of the API's Event resource the assistant uses.
type wireEvent struct {
	ID          string   `json:"id,omitempty"`
	Status      string   `json:"status,omitempty"`
	HTMLLink    string   `json:"htmlLink,omitempty"`
	Summary     string   `json:"summary,omitempty"`
	Description string   `json:"description,omitempty"`
	Location    string   `json:"location,omitempty"`
	Start       wireTime `json:"start"`
	End         wireTime `json:"end"`
}

const dateLayout = "2006-01-02"

// toWire checks an event and turns it into the API's resource for an insert.
func (e Event) toWire() (wireEvent, error) {
	if e.Start.IsZero() {
		return wireEvent{}, fmt.Errorf("%w: the event has no start", ErrInvalid)
	}
	if !e.End.IsZero() && !e.End.After(e.Start) {
		return wireEvent{}, fmt.Errorf("%w: the event ends (%s) before it starts (%s)", ErrInvalid, e.End.Format(time.RFC3339), e.Start.Format(time.RFC3339))
	}
	w := wireEvent{ID: e.ID, Summary: e.Summary, Description: e.Description, Location: e.Location}
	if e.AllDay {
		first := midnight(e.Start)
		last := first.AddDate(0, 0, 1)
		if !e.End.IsZero() {
			last = midnight(e.End)
			if last.Before(e.End) {
				last = last.AddDate(0, 0, 1)
			}
			if !last.After(first) {
				last = first.AddDate(0, 0, 1)
			}
		}
		w.Start = wireTime{Date: first.Format(dateLayout), TimeZone: e.TimeZone}
		w.End = wireTime{Date: last.Format(dateLayout), TimeZone: e.TimeZone}
		return w, nil
	}
	end := e.End
	if end.IsZero() {
		end = e.Start.Add(time.Hour)
	}
	w.Start = wireTime{DateTime: e.Start.Format(time.RFC3339), TimeZone: e.TimeZone}
	w.End = wireTime{DateTime: end.Format(time.RFC3339), TimeZone: e.TimeZone}
	return w, nil
}

// midnight is the start of t's day in t's zone.
func midnight(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}

// fromWire reads an event Google sent. calendarZone places events that name no zone of their
// own; nil means UTC.
func fromWire(w wireEvent, calendarZone *time.Location) (Event, error) {
	e := Event{ID: w.ID, Summary: w.Summary, Description: w.Description, Location: w.Location, HTMLLink: w.HTMLLink, TimeZone: w.Start.TimeZone}
	zone := calendarZone
	if zone == nil {
		zone = time.UTC
	}
	if w.Start.TimeZone != "" {
		if loc, err := time.LoadLocation(w.Start.TimeZone); err == nil {
			zone = loc
		}
	}
	var err error
	if w.Start.Date != "" {
		e.AllDay = true
		if e.Start, err = time.ParseInLocation(dateLayout, w.Start.Date, zone); err != nil {
			return Event{}, fmt.Errorf("event %q: start date: %w", w.ID, err)
		}
		e.End = e.Start.AddDate(0, 0, 1)
		if w.End.Date != "" {
			if e.End, err = time.ParseInLocation(dateLayout, w.End.Date, zone); err != nil {
				return Event{}, fmt.Errorf("event %q: end date: %w", w.ID, err)
			}
		}
		return e, nil
	}
	if e.Start, err = parseInstant(w.Start.DateTime, zone); err != nil {
		return Event{}, fmt.Errorf("event %q: start: %w", w.ID, err)
	}
	if w.End.DateTime == "" {
		e.End = e.Start
		return e, nil
	}
	if e.End, err = parseInstant(w.End.DateTime, zone); err != nil {
		return Event{}, fmt.Errorf("event %q: end: %w", w.ID, err)
	}
	return e, nil
}

func parseInstant(s string, zone *time.Location) (time.Time, error) {
	if strings.TrimSpace(s) == "" {
		return time.Time{}, fmt.Errorf("no dateTime or date")
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.In(zone), nil
}
