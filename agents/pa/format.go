package pa

import (
	"fmt"
	"strings"
	"time"
)

// How the agent states times: always the local day by name and date, so a reply is checkable
// ("tomorrow (Tuesday, March 4) at 5:00 PM EST"), never a bare "5pm".

func sameDay(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd
}

// formatDay names t's day relative to now (both in the user's zone).
func formatDay(t, now time.Time) string {
	date := t.Format("Monday, January 2")
	if t.Year() != now.Year() {
		date += t.Format(", 2006")
	}
	switch {
	case sameDay(t, now):
		return "today (" + date + ")"
	case sameDay(t, now.AddDate(0, 0, 1)):
		return "tomorrow (" + date + ")"
	case sameDay(t, now.AddDate(0, 0, -1)):
		return "yesterday (" + date + ")"
	}
	return date
}

// formatClock is "5:00 PM".
func formatClock(t time.Time) string { return t.Format("3:04 PM") }

// formatWhen is the day and time with the zone: "tomorrow (Tuesday, March 4) at 5:00 PM EST".
func formatWhen(t, now time.Time) string {
	return formatDay(t, now) + " at " + formatClock(t) + " " + zoneName(t)
}

// zoneName is the zone's abbreviation ("EST", "JST"), or its offset where it has none.
func zoneName(t time.Time) string {
	name := t.Format("MST")
	if strings.HasPrefix(name, "+") || strings.HasPrefix(name, "-") {
		return "UTC" + name
	}
	return name
}

// formatSpan is an event's time: "today (Monday, March 3) from 3:00 PM to 4:00 PM EST", or its
// days when it is all-day.
func formatSpan(start, end time.Time, allDay bool, now time.Time) string {
	if allDay {
		last := end.AddDate(0, 0, -1)
		if !last.After(start) {
			return formatDay(start, now) + ", all day"
		}
		return "from " + formatDay(start, now) + " to " + formatDay(last, now) + ", all day"
	}
	if end.Equal(start) {
		return formatWhen(start, now)
	}
	if sameDay(start, end) {
		return formatDay(start, now) + " from " + formatClock(start) + " to " + formatClock(end) + " " + zoneName(end)
	}
	return "from " + formatWhen(start, now) + " to " + formatWhen(end, now)
}

// listWords joins items as English: "a", "a and b", "a, b and c".
func listWords(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// listLabel names a task list in a sentence: "your to-do list", "your shopping list".
func listLabel(list string) string {
	if list == "" || list == "todo" {
		return "your to-do list"
	}
	return "your " + list + " list"
}

// plural is "1 note", "2 notes".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// yourWords turns the user's words back at them: "call my mom" -> "call your mom".
func yourWords(s string) string {
	return swapWords(s, map[string]string{"my": "your", "me": "you", "myself": "yourself", "mine": "yours"})
}

// myWords undoes yourWords, for text the agent quoted back and the user confirmed.
func myWords(s string) string {
	return swapWords(s, map[string]string{"your": "my", "you": "me", "yourself": "myself", "yours": "mine"})
}

func swapWords(s string, swap map[string]string) string {
	words := strings.Fields(s)
	for i, w := range words {
		core := strings.TrimRight(w, ".,!?;:")
		tail := w[len(core):]
		if to, ok := swap[strings.ToLower(core)]; ok {
			words[i] = to + tail
		}
	}
	return strings.Join(words, " ")
}
