package pa

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// localTime reads "2006-01-02 15:04" in loc.
func localTime(t testing.TB, loc *time.Location, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseWhen(t *testing.T) {
	// Monday 3 March 2025, 10:00 local unless a case says otherwise.
	const monday = "2025-03-03 10:00"
	tests := []struct {
		text, zone, now string
		want            string // local "2006-01-02 15:04"; "" means no time found
		rest            string
		hasTime         bool
		days            int
		duration        time.Duration
		end             string
	}{
		{text: "remind me to call mom at 5pm tomorrow", want: "2025-03-04 17:00", rest: "remind me to call mom", hasTime: true},
		{text: "remind me in 10 minutes to stretch", want: "2025-03-03 10:10", rest: "remind me to stretch", hasTime: true},
		{text: "in an hour", want: "2025-03-03 11:00", hasTime: true},
		{text: "in half an hour", want: "2025-03-03 10:30", hasTime: true},
		{text: "in an hour and a half", want: "2025-03-03 11:30", hasTime: true},
		{text: "in 90min", want: "2025-03-03 11:30", hasTime: true},
		{text: "2 hours from now", want: "2025-03-03 12:00", hasTime: true},
		{text: "in 2 days", want: "2025-03-05 10:00", hasTime: true},
		{text: "in 2 days at 8am", want: "2025-03-05 08:00", hasTime: true},
		{text: "what's on my calendar on Friday", want: "2025-03-07 00:00", rest: "what's on my calendar", days: 1},
		{text: "friday at 9", want: "2025-03-07 09:00", hasTime: true},
		{text: "friday at 3", want: "2025-03-07 15:00", hasTime: true},
		{text: "next friday", want: "2025-03-14 00:00", days: 1},
		{text: "on Mon at 9am", want: "2025-03-03 09:00", hasTime: true, now: "2025-03-03 08:00"},
		{text: "monday at 9am", want: "2025-03-10 09:00", hasTime: true}, // today's has passed
		{text: "add sun cream to my list", want: "", rest: "add sun cream to my list"},
		{text: "schedule a meeting with Ann on Monday at 3pm for an hour", want: "2025-03-03 15:00", rest: "schedule a meeting with Ann", hasTime: true, duration: time.Hour},
		{text: "lunch from 12:30 to 2pm", want: "2025-03-03 12:30", rest: "lunch", hasTime: true, end: "2025-03-03 14:00"},
		{text: "call at 3pm until 4", want: "2025-03-03 15:00", rest: "call", hasTime: true, end: "2025-03-03 16:00"},
		{text: "at 9", want: "2025-03-03 21:00", hasTime: true},           // 9am has passed
		{text: "at 11", want: "2025-03-03 11:00", hasTime: true},          // the next 11 o'clock
		{text: "at 9:30am", want: "2025-03-04 09:30", hasTime: true},      // tomorrow's
		{text: "at 17:45", want: "2025-03-03 17:45", hasTime: true},       // 24-hour clock
		{text: "noon", want: "2025-03-03 12:00", hasTime: true},           // no "at" needed
		{text: "at midnight", want: "2025-03-04 00:00", hasTime: true},    // the coming one
		{text: "half past 4", want: "2025-03-03 16:30", hasTime: true},    // 4:30am has passed
		{text: "at half past 4", want: "2025-03-03 16:30", hasTime: true}, // 4:30am has passed
		{text: "at quarter to 5 pm", want: "2025-03-03 16:45", hasTime: true},
		{text: "at 5 o'clock", want: "2025-03-03 17:00", hasTime: true},
		{text: "tomorrow morning", want: "2025-03-04 09:00", hasTime: true},
		{text: "tomorrow evening at 8", want: "2025-03-04 20:00", hasTime: true},
		{text: "at 8 in the evening", want: "2025-03-03 20:00", hasTime: true},
		{text: "this afternoon", want: "2025-03-03 15:00", hasTime: true},
		{text: "tonight", want: "2025-03-03 20:00", hasTime: true},
		{text: "the day after tomorrow", want: "2025-03-05 00:00", days: 1},
		{text: "yesterday", want: "2025-03-02 00:00", days: 1},
		{text: "March 5", want: "2025-03-05 00:00", days: 1},
		{text: "on the 5th of March 2026 at 10:15", want: "2026-03-05 10:15", hasTime: true},
		{text: "Feb 1st", want: "2026-02-01 00:00", days: 1}, // passed this year: next year's
		{text: "2025-12-24 at 6pm", want: "2025-12-24 18:00", hasTime: true},
		{text: "on the 20th", want: "2025-03-20 00:00", days: 1},
		{text: "this week", want: "2025-03-03 00:00", days: 7},
		{text: "next week", want: "2025-03-10 00:00", days: 7},
		{text: "this weekend", want: "2025-03-08 00:00", days: 2},
		{text: "February 30", want: "", rest: "February 30"},
		{text: "in 0 minutes", want: "", rest: "in 0 minutes"},
		{text: "in 99999999999 weeks", want: "", rest: "in 99999999999 weeks"},
		{text: "at 25:00", want: "", rest: "at 25:00"},
		{text: "at 13pm", want: "", rest: "at 13pm"},
		{text: "buy 2 apples and 3 pears", want: "", rest: "buy 2 apples and 3 pears"},
		{text: "I may go", want: "", rest: "I may go"},

		// Time zones: "tomorrow at 5pm" is 5pm where the user is.
		{text: "tomorrow at 5pm", zone: "America/New_York", want: "2025-03-04 17:00", hasTime: true},
		{text: "tomorrow at 5pm", zone: "Asia/Tokyo", want: "2025-03-04 17:00", hasTime: true},
		// Across the start of daylight saving time in New York (2025-03-09 02:00 -> 03:00): the
		// clock time holds, whatever the hours in between.
		{text: "tomorrow at 10am", zone: "America/New_York", now: "2025-03-08 10:00", want: "2025-03-09 10:00", hasTime: true},
		{text: "in 1 day", zone: "America/New_York", now: "2025-03-08 10:00", want: "2025-03-09 10:00", hasTime: true},
		{text: "in 24 hours", zone: "America/New_York", now: "2025-03-08 10:00", want: "2025-03-09 11:00", hasTime: true},
		// 2:30am does not exist that night: Go moves it an hour on.
		{text: "tomorrow at 2:30am", zone: "America/New_York", now: "2025-03-08 10:00", want: "2025-03-09 03:30", hasTime: true},
	}
	for _, tt := range tests {
		name := tt.text
		if tt.zone != "" {
			name += " in " + tt.zone
		}
		if tt.now != "" {
			name += " at " + tt.now
		}
		t.Run(name, func(t *testing.T) {
			zone := tt.zone
			if zone == "" {
				zone = "UTC"
			}
			loc := mustZone(t, zone)
			nowText := tt.now
			if nowText == "" {
				nowText = monday
			}
			now := localTime(t, loc, nowText)
			w, rest, ok := ParseWhen(tt.text, now)
			if tt.want == "" {
				if ok {
					t.Fatalf("found %v in %q", w.At, tt.text)
				}
			} else {
				if !ok {
					t.Fatalf("no time found in %q", tt.text)
				}
				if want := localTime(t, loc, tt.want); !w.At.Equal(want) || w.At.Location() != loc {
					t.Fatalf("At = %v, want %v", w.At, want)
				}
				if w.HasTime != tt.hasTime {
					t.Errorf("HasTime = %v, want %v", w.HasTime, tt.hasTime)
				}
			}
			if tt.days != 0 && w.Days != tt.days {
				t.Errorf("Days = %d, want %d", w.Days, tt.days)
			}
			if w.Duration != tt.duration {
				t.Errorf("Duration = %v, want %v", w.Duration, tt.duration)
			}
			if tt.end != "" && !w.End.Equal(localTime(t, loc, tt.end)) {
				t.Errorf("End = %v, want %s", w.End, tt.end)
			}
			if tt.rest != "" && rest != tt.rest {
				t.Errorf("rest = %q, want %q", rest, tt.rest)
			}
		})
	}
}

// The same words mean different instants in different zones, and the same instant in UTC only
// when the zones agree.
func TestParseWhenIsLocalToTheUser(t *testing.T) {
	instant := time.Date(2025, 3, 3, 12, 0, 0, 0, time.UTC) // 7am in New York, 9pm in Tokyo
	ny, _, _ := ParseWhen("tomorrow at 5pm", instant.In(mustZone(t, "America/New_York")))
	tokyo, _, _ := ParseWhen("tomorrow at 5pm", instant.In(mustZone(t, "Asia/Tokyo")))
	if want := time.Date(2025, 3, 4, 22, 0, 0, 0, time.UTC); !ny.At.Equal(want) {
		t.Errorf("New York: %v, want %v", ny.At.UTC(), want)
	}
	if want := time.Date(2025, 3, 4, 8, 0, 0, 0, time.UTC); !tokyo.At.Equal(want) {
		t.Errorf("Tokyo: %v, want %v", tokyo.At.UTC(), want)
	}
}

func FuzzParseWhen(f *testing.F) {
	for _, s := range []string{
		"remind me to call mom at 5pm tomorrow", "in 10 minutes", "next friday at 9", "the 31st",
		"on the 5th of March 2026 at 10:15", "from 11:30pm to 1am", "at quarter to 12 am", "in 1e308 days",
		"2025-02-29", "at 0:00", "half an", "a couple of", "5.30pm", "tonight at 12", "this weekend",
	} {
		f.Add(s, int64(1741000000), "America/New_York")
	}
	zones := map[string]*time.Location{}
	f.Fuzz(func(t *testing.T, text string, unix int64, zone string) {
		loc, ok := zones[zone]
		if !ok {
			var err error
			if loc, err = time.LoadLocation(zone); err != nil || len(zone) > 40 {
				loc = time.UTC
			}
			zones[zone] = loc
		}
		now := time.Unix(unix%(1<<40), 0).In(loc)
		w, rest, found := ParseWhen(text, now)
		if found && w.At.IsZero() {
			t.Fatalf("found a zero time in %q", text)
		}
		// A time is near now (relative words, at most 10 years on), or a date with its year
		// written out (1970-2999).
		near := w.At.After(now.AddDate(-1, 0, -2)) && w.At.Before(now.Add(maxAhead+2*day))
		if found && !near && (w.At.Year() < 1970 || w.At.Year() > 2999) {
			t.Fatalf("%q resolved to %v, far from %v", text, w.At, now)
		}
		if utf8.ValidString(text) && !utf8.ValidString(rest) {
			t.Fatalf("rest of valid text is not valid UTF-8: %q", rest)
		}
		if len(rest) > len(text)+1 || strings.Contains(rest, "  ") {
			t.Fatalf("rest %q of %q", rest, text)
		}
	})
}
