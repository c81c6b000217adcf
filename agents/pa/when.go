package pa

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// When is a date or time found in a message, resolved in the user's time zone (the location
// of the "now" it was parsed against).
type When struct {
	// At is the resolved instant. Without a time of day it is the day's midnight.
	At time.Time
	// HasDate reports that a day was named: today, tomorrow, Friday, March 5, in 2 days.
	HasDate bool
	// HasTime reports that a time of day was named or implied: 5pm, noon, this evening, in
	// 10 minutes.
	HasTime bool
	// Days is how many days a date without a time covers: 1, 2 for "this weekend", 7 for
	// "next week".
	Days int
	// Duration is a length given with "for" ("for an hour"); 0 when none.
	Duration time.Duration
	// End is an end time given with "to" or "until" ("from 3pm to 4pm"); zero when none.
	End time.Time
}

// Parts of the day, as times of day.
var dayParts = map[string]int{"morning": 9, "afternoon": 15, "evening": 19, "night": 20, "tonight": 20}

var weekdays = map[string]time.Weekday{
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
	// Abbreviations double as words ("sun", "sat", "wed"): they count only after "on", "this"
	// or "next".
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "tues": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "thur": time.Thursday, "thurs": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

var months = map[string]time.Month{
	"january": time.January, "jan": time.January, "february": time.February, "feb": time.February,
	"march": time.March, "mar": time.March, "april": time.April, "apr": time.April, "may": time.May,
	"june": time.June, "jun": time.June, "july": time.July, "jul": time.July, "august": time.August,
	"aug": time.August, "september": time.September, "sep": time.September, "sept": time.September,
	"october": time.October, "oct": time.October, "november": time.November, "nov": time.November,
	"december": time.December, "dec": time.December,
}

var numberWords = map[string]float64{
	"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
	"eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
	"thirty": 30, "forty": 40, "forty-five": 45, "fifty": 50, "sixty": 60, "ninety": 90,
}

// units are the lengths "in 10 minutes" and "for 2 hours" count in. Days and weeks move the
// calendar date (the wall-clock time stays across a DST change); the others are exact.
var units = map[string]time.Duration{
	"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hrs": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": day, "day": day, "days": day, "w": week, "wk": week, "wks": week, "week": week, "weeks": week,
}

const (
	day  = 24 * time.Hour
	week = 7 * day
	// maxAhead bounds relative times: "in 99999999 weeks" is not a time, it is a typo.
	maxAhead = 10 * 366 * day
)

// token is one word of the message: its normalized text and where it sits in the original.
type token struct {
	text       string
	start, end int
}

// tokenize splits s into words: runs of letters and digits, joined by : ' . / - when a letter
// or digit follows ("5:30", "o'clock", "a.m", "2025-03-05"). Text is lower case.
func tokenize(s string) []token {
	var out []token
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !isWordRune(r) {
			i += size
			continue
		}
		start := i
		i += size
		for i < len(s) {
			r, size := utf8.DecodeRuneInString(s[i:])
			if isWordRune(r) {
				i += size
				continue
			}
			if strings.ContainsRune(":'’./-", r) && i+size < len(s) {
				if next, _ := utf8.DecodeRuneInString(s[i+size:]); isWordRune(next) {
					i += size
					continue
				}
			}
			break
		}
		text := strings.ToLower(strings.ReplaceAll(s[start:i], "’", "'"))
		out = append(out, token{text: text, start: start, end: i})
	}
	return out
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// whenParser matches time expressions token by token, recording what it found and which
// tokens it used.
type whenParser struct {
	toks []token
	used []bool
	now  time.Time
	loc  *time.Location

	// date: an offset in days from today, or an absolute day.
	hasDate   bool
	dayOffset int
	absDate   bool
	year      int
	month     time.Month
	dom       int
	days      int
	// weekdayOnly marks a bare weekday ("Friday"), which rolls a week on when its time has
	// passed today.
	weekdayOnly bool

	// time of day
	hasTime  bool
	hour     int
	minute   int
	meridiem string // "am", "pm" or "" when the hour could be either
	part     string // a part of the day ("evening") that may fix the meridiem

	// instant, from "in 10 minutes"
	instant    time.Time
	hasInstant bool

	duration time.Duration
	hasEnd   bool
	endHour  int
	endMin   int
	endMer   string
}

// ParseWhen finds the date and time in text, resolved against now in now's location (the
// user's time zone), and returns the text without them. ok is false when there is none. It
// never panics, whatever the input.
//
// Understood: "in 10 minutes", "in an hour", "2 hours from now", "today", "tonight",
// "tomorrow", "the day after tomorrow", "yesterday", weekdays ("on Friday", "this Friday";
// "next Friday" is the Friday of next week), "this week", "next week", "this weekend",
// "March 5", "5th of March 2026", "2025-03-05", "on the 5th", times ("at 5", "5pm",
// "5:30 pm", "17:00", "noon", "midnight", "half past 4", "quarter to 5"), parts of the day
// ("tomorrow morning", "this evening", "in the afternoon"), lengths ("for an hour",
// "for 30 minutes") and ends ("from 3pm to 4pm", "until 5").
//
// A time without a day is the next time that clock time comes round; an hour without am/pm
// is the next of the two when no day is given, else 7-11 in the morning and 12-6 in the
// afternoon.
func ParseWhen(text string, now time.Time) (w When, rest string, ok bool) {
	p := &whenParser{toks: tokenize(text), now: now, loc: now.Location()}
	p.used = make([]bool, len(p.toks))
	for i := 0; i < len(p.toks); {
		if n := p.match(i); n > 0 {
			for k := i; k < i+n && k < len(p.used); k++ {
				p.used[k] = true
			}
			i += n
			continue
		}
		i++
	}
	w, ok = p.resolve()
	return w, p.rest(text), ok
}

func (p *whenParser) tok(i int) string {
	if i < 0 || i >= len(p.toks) {
		return ""
	}
	return p.toks[i].text
}

// match tries every pattern at token i and returns how many tokens the first match used.
func (p *whenParser) match(i int) int {
	t := p.tok(i)
	switch t {
	case "in", "within":
		if n := p.relative(i + 1); n > 0 {
			return 1 + n
		}
		if p.tok(i+1) == "the" {
			if h, ok := dayParts[p.tok(i+2)]; ok && p.tok(i+2) != "tonight" {
				p.setPart(p.tok(i+2), h)
				return 3
			}
		}
	case "after":
		if n := p.relative(i + 1); n > 0 {
			return 1 + n
		}
	case "for":
		if d, _, n := p.quantity(i + 1); n > 0 && d > 0 && d <= maxAhead {
			p.duration = d
			return 1 + n
		}
	case "today":
		p.setDay(0)
		return 1 + p.partAfter(i+1)
	case "tonight":
		p.setDay(0)
		p.setPart("night", dayParts["night"])
		return 1
	case "tomorrow", "tmrw", "tmr", "tomorow":
		p.setDay(1)
		return 1 + p.partAfter(i+1)
	case "yesterday":
		p.setDay(-1)
		return 1 + p.partAfter(i+1)
	case "the":
		if p.tok(i+1) == "day" && p.tok(i+2) == "after" && p.tok(i+3) == "tomorrow" {
			p.setDay(2)
			return 4 + p.partAfter(i+4)
		}
		if n := p.dayOfMonth(i + 1); n > 0 {
			return 1 + n
		}
	case "day":
		if p.tok(i+1) == "after" && p.tok(i+2) == "tomorrow" {
			p.setDay(2)
			return 3 + p.partAfter(i+3)
		}
	case "this", "next", "coming", "on":
		if n := p.namedDay(i); n > 0 {
			return n
		}
		if t == "this" {
			if h, ok := dayParts[p.tok(i+1)]; ok {
				p.setDay(0)
				p.setPart(p.tok(i+1), h)
				return 2
			}
		}
		if t == "on" {
			if n := p.absoluteDate(i + 1); n > 0 {
				return 1 + n
			}
			if p.tok(i+1) == "the" {
				if n := p.dayOfMonth(i + 2); n > 0 {
					return 2 + n
				}
			}
		}
	case "at", "by", "around", "from":
		if p.tok(i+1) == "night" && t == "at" {
			p.setPart("night", dayParts["night"])
			return 2
		}
		if n := p.clock(i+1, true); n > 0 {
			return 1 + n + p.partAfter(i+1+n)
		}
	case "to", "until", "till", "til":
		if p.hasTime && !p.hasEnd {
			if n := p.endClock(i + 1); n > 0 {
				return 1 + n
			}
		}
	}
	if _, ok := weekdays[t]; ok && strings.HasSuffix(t, "day") { // full names only without "on"
		if n := p.namedDay(i); n > 0 {
			return n
		}
	}
	if n := p.absoluteDate(i); n > 0 {
		return n
	}
	if n := p.clock(i, false); n > 0 {
		return n + p.partAfter(i+n)
	}
	// "2 hours from now"
	if d, unit, n := p.quantity(i); n > 0 && p.tok(i+n) == "from" && p.tok(i+n+1) == "now" {
		if p.setRelative(d, unit) {
			return n + 2
		}
	}
	return 0
}

func (p *whenParser) setDay(offset int) {
	if p.hasDate {
		return
	}
	p.hasDate, p.dayOffset, p.days = true, offset, 1
}

func (p *whenParser) setPart(part string, hour int) {
	p.part = part
	switch {
	case !p.hasTime:
		p.hasTime, p.hour, p.minute = true, hour, 0
		p.meridiem = "part"
	case p.meridiem == "":
		p.meridiem = partMeridiem(part) // "at 8 in the evening"
	}
}

// partAfter takes a part of the day right after a day or a time: "tomorrow morning",
// "at 8 in the evening".
func (p *whenParser) partAfter(i int) int {
	t := p.tok(i)
	if t == "in" && p.tok(i+1) == "the" {
		if h, ok := dayParts[p.tok(i+2)]; ok && p.tok(i+2) != "tonight" {
			p.setPart(p.tok(i+2), h)
			return 3
		}
	}
	if t == "at" && p.tok(i+1) == "night" {
		p.setPart("night", dayParts["night"])
		return 2
	}
	if h, ok := dayParts[t]; ok && t != "tonight" {
		p.setPart(t, h)
		return 1
	}
	return 0
}

// relative reads "10 minutes", "an hour", "half an hour", "2 days" after "in".
func (p *whenParser) relative(i int) int {
	d, unit, n := p.quantity(i)
	if n == 0 || !p.setRelative(d, unit) {
		return 0
	}
	return n
}

// setRelative applies a length from now: whole days and weeks move the date, keeping the
// clock time across a DST change; anything else ("24 hours") is an exact instant.
func (p *whenParser) setRelative(d, unit time.Duration) bool {
	if d <= 0 || d > maxAhead || p.hasInstant || p.hasDate {
		return false
	}
	if unit >= day && d%day == 0 {
		p.hasDate, p.dayOffset, p.days = true, int(d/day), 1
		if !p.hasTime {
			// The same clock time that many days on; an explicit time replaces it.
			p.hasInstant = true
			p.instant = p.now.AddDate(0, 0, int(d/day))
		}
		return true
	}
	p.hasInstant, p.instant = true, p.now.Add(d)
	return true
}

// quantity reads a number and a unit: "10 minutes", "10min", "an hour", "half an hour",
// "1.5 hours", "a couple of days".
func (p *whenParser) quantity(i int) (d, unit time.Duration, n int) {
	t := p.tok(i)
	if t == "half" && (p.tok(i+1) == "an" || p.tok(i+1) == "a") {
		if u, ok := units[p.tok(i+2)]; ok && u >= time.Hour {
			return u / 2, time.Hour, 3
		}
		return 0, 0, 0
	}
	if t == "a" && p.tok(i+1) == "couple" && p.tok(i+2) == "of" {
		if u, ok := units[p.tok(i+3)]; ok {
			return 2 * u, u, 4
		}
		return 0, 0, 0
	}
	// "10min", "2h": the number and the unit in one word.
	if k := strings.IndexFunc(t, func(r rune) bool { return !unicode.IsDigit(r) && r != '.' }); k > 0 {
		if u, ok := units[t[k:]]; ok {
			if n, ok := parseAmount(t[:k]); ok {
				return scale(n, u), u, 1
			}
		}
		return 0, 0, 0
	}
	amount, ok := numberWords[t]
	if !ok {
		if amount, ok = parseAmount(t); !ok {
			return 0, 0, 0
		}
	}
	u, ok := units[p.tok(i+1)]
	if !ok || len(p.tok(i+1)) == 1 { // "in 5 m" is too thin to trust; "5m" above is fine
		return 0, 0, 0
	}
	// "an hour and a half"
	if p.tok(i+2) == "and" && p.tok(i+3) == "a" && p.tok(i+4) == "half" {
		return scale(amount+0.5, u), u, 5
	}
	return scale(amount, u), u, 2
}

func parseAmount(s string) (float64, bool) {
	if s == "" || len(s) > 12 {
		return 0, false
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n <= 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return 0, false
	}
	return n, true
}

// scale multiplies a unit, saturating past maxAhead so nothing overflows.
func scale(n float64, u time.Duration) time.Duration {
	if n*float64(u) > float64(maxAhead) {
		return maxAhead + 1
	}
	return time.Duration(n * float64(u))
}

// namedDay reads "Friday", "on Friday", "this Friday", "next Friday", "this week", "next week",
// "this weekend" starting at i.
func (p *whenParser) namedDay(i int) int {
	mod, n := p.tok(i), 1
	switch mod {
	case "on", "this", "next", "coming":
		if mod == "this" && p.tok(i+1) == "coming" {
			n = 2
		}
	default:
		mod, n = "", 0
	}
	t := p.tok(i + n)
	today := int(p.now.Weekday())
	mondayIndex := (today + 6) % 7 // Monday 0 ... Sunday 6
	switch {
	case t == "week" && (mod == "this" || mod == "next"):
		if p.hasDate {
			return 0
		}
		p.hasDate = true
		if mod == "this" {
			p.dayOffset, p.days = 0, 7-mondayIndex
		} else {
			p.dayOffset, p.days = 7-mondayIndex, 7
		}
		return n + 1
	case t == "weekend" && mod != "coming":
		if p.hasDate {
			return 0
		}
		// Saturday is index 5 from Monday; "next weekend" is next week's.
		p.hasDate, p.days = true, 2
		switch {
		case mod == "next":
			p.dayOffset = 7 - mondayIndex + 5
		case mondayIndex == 6:
			p.dayOffset, p.days = 0, 1
		default:
			p.dayOffset = 5 - mondayIndex
		}
		return n + 1
	}
	wd, ok := weekdays[t]
	if !ok || p.hasDate {
		return 0
	}
	if mod == "" && !strings.HasSuffix(t, "day") {
		return 0
	}
	target := (int(wd) + 6) % 7
	offset := (target - mondayIndex + 7) % 7
	if mod == "next" {
		offset = 7 - mondayIndex + target
	} else if offset == 0 {
		p.weekdayOnly = true
	}
	p.hasDate, p.dayOffset, p.days = true, offset, 1
	return n + 1 + p.partAfter(i+n+1)
}

// absoluteDate reads "March 5", "March 5th, 2026", "5 March", "5th of March", "2025-03-05".
func (p *whenParser) absoluteDate(i int) int {
	if p.hasDate {
		return 0
	}
	t := p.tok(i)
	if y, m, d, ok := parseISODate(t); ok {
		return p.setDate(y, m, d, true, 1)
	}
	if m, ok := months[t]; ok {
		if d, ok := ordinal(p.tok(i + 1)); ok {
			n := 2
			y, hasYear := year(p.tok(i + 2))
			if hasYear {
				n = 3
			}
			return p.setDate(y, m, d, hasYear, n)
		}
		return 0
	}
	if d, ok := ordinal(t); ok {
		n := 1
		if p.tok(i+1) == "of" {
			n = 2
		}
		if m, ok := months[p.tok(i+n)]; ok {
			y, hasYear := year(p.tok(i + n + 1))
			if hasYear {
				return p.setDate(y, m, d, true, n+2)
			}
			return p.setDate(0, m, d, false, n+1)
		}
	}
	return 0
}

// dayOfMonth reads "5th" after "the": that day of this month, or of the next once it passed.
func (p *whenParser) dayOfMonth(i int) int {
	t := p.tok(i)
	if p.hasDate || len(t) < 3 { // "the 5" is a count, "the 5th" a day
		return 0
	}
	d, ok := ordinal(t)
	if !ok || !strings.ContainsAny(t, "abcdefghijklmnopqrstuvwxyz") {
		return 0
	}
	if p.tok(i+1) == "of" {
		return 0 // "the 5th of March" is read by absoluteDate
	}
	y, m, _ := p.now.Date()
	today := time.Date(y, m, p.now.Day(), 0, 0, 0, 0, p.loc)
	for k := 0; k < 3; k++ {
		mm := m + time.Month(k)
		if daysIn(y, mm) >= d {
			if c := time.Date(y, mm, d, 0, 0, 0, 0, p.loc); !c.Before(today) {
				p.hasDate, p.absDate, p.year, p.month, p.dom, p.days = true, true, c.Year(), c.Month(), c.Day(), 1
				return 1
			}
		}
	}
	return 0
}

func (p *whenParser) setDate(y int, m time.Month, d int, hasYear bool, n int) int {
	if !hasYear {
		y = p.now.Year()
		today := time.Date(p.now.Year(), p.now.Month(), p.now.Day(), 0, 0, 0, 0, p.loc)
		if d <= daysIn(y, m) && time.Date(y, m, d, 0, 0, 0, 0, p.loc).Before(today) {
			y++ // a date without a year that has passed is next year's
		}
	}
	if d < 1 || d > daysIn(y, m) {
		return 0
	}
	p.hasDate, p.absDate, p.year, p.month, p.dom, p.days = true, true, y, m, d, 1
	return n
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func parseISODate(t string) (int, time.Month, int, bool) {
	if len(t) != 10 || t[4] != '-' || t[7] != '-' {
		return 0, 0, 0, false
	}
	y, err1 := strconv.Atoi(t[:4])
	m, err2 := strconv.Atoi(t[5:7])
	d, err3 := strconv.Atoi(t[8:])
	if err1 != nil || err2 != nil || err3 != nil || y < 1970 || y > 2999 || m < 1 || m > 12 || d < 1 || d > daysIn(y, time.Month(m)) {
		return 0, 0, 0, false
	}
	return y, time.Month(m), d, true
}

// ordinal reads a day of the month: "5", "5th", "1st", "22nd", "23rd".
func ordinal(t string) (int, bool) {
	digits := strings.TrimRight(t, "stndrh")
	if suffix := t[len(digits):]; suffix != "" && suffix != "st" && suffix != "nd" && suffix != "rd" && suffix != "th" {
		return 0, false
	}
	if digits == "" || len(digits) > 2 {
		return 0, false
	}
	d, err := strconv.Atoi(digits)
	if err != nil || d < 1 || d > 31 {
		return 0, false
	}
	return d, true
}

func year(t string) (int, bool) {
	if len(t) != 4 {
		return 0, false
	}
	y, err := strconv.Atoi(t)
	if err != nil || y < 1970 || y > 2999 {
		return 0, false
	}
	return y, true
}

// clock reads a time of day at i: "5pm", "5 pm", "5:30", "17:00", "noon", "half past 4",
// "quarter to 5", "5 o'clock". A bare number counts only after "at" (afterAt).
func (p *whenParser) clock(i int, afterAt bool) int {
	if p.hasTime && p.meridiem != "part" {
		return 0
	}
	h, m, mer, n := p.readClock(i, afterAt)
	if n == 0 {
		return 0
	}
	if p.meridiem == "part" {
		// "tomorrow evening at 8": the part of the day says which 8.
		if mer == "" {
			mer = partMeridiem(p.part)
		}
	}
	p.hasTime, p.hour, p.minute, p.meridiem = true, h, m, mer
	return n
}

// endClock reads the end of a span: "to 4pm", "until 5".
func (p *whenParser) endClock(i int) int {
	h, m, mer, n := p.readClock(i, true)
	if n == 0 {
		return 0
	}
	p.hasEnd, p.endHour, p.endMin, p.endMer = true, h, m, mer
	return n
}

func partMeridiem(part string) string {
	if part == "morning" {
		return "am"
	}
	return "pm"
}

// readClock parses a time of day without recording it.
func (p *whenParser) readClock(i int, afterAt bool) (hour, minute int, meridiem string, n int) {
	t := p.tok(i)
	switch t {
	case "noon", "midday":
		return 12, 0, "pm", 1
	case "midnight":
		return 0, 0, "am", 1
	case "half", "quarter":
		if rel := p.tok(i + 1); rel == "past" || rel == "to" || rel == "after" {
			h, _, mer, k := p.readClock(i+2, true)
			if k == 0 || h > 12 {
				return 0, 0, "", 0
			}
			mins := 30
			if t == "quarter" {
				mins = 15
			}
			if rel == "to" {
				if t == "half" {
					return 0, 0, "", 0
				}
				h, mins = h-1, 45
				if h < 0 {
					h = 23
				}
				if h == 0 && mer == "" {
					h = 12
				}
			}
			return h, mins, mer, 2 + k
		}
		return 0, 0, "", 0
	}
	// Split "5pm" / "5:30pm" / "5:30" / "17:00".
	body, mer := t, ""
	for _, suffix := range []string{"am", "pm", "a.m", "p.m"} {
		if strings.HasSuffix(body, suffix) && len(body) > len(suffix) {
			body, mer = strings.TrimSuffix(body, suffix), strings.ReplaceAll(suffix, ".", "")
			break
		}
	}
	hs, ms, hasColon := strings.Cut(body, ":")
	if !hasColon {
		hs, ms, hasColon = strings.Cut(body, ".") // "5.30pm"
		if hasColon && mer == "" {
			return 0, 0, "", 0 // "5.30" alone is a number
		}
	}
	if hs == "" || len(hs) > 2 || !allDigits(hs) || (hasColon && (len(ms) != 2 || !allDigits(ms))) {
		return 0, 0, "", 0
	}
	hour, _ = strconv.Atoi(hs)
	if hasColon {
		minute, _ = strconv.Atoi(ms)
	}
	n = 1
	if mer == "" {
		switch p.tok(i + 1) {
		case "am", "a.m", "pm", "p.m":
			mer, n = strings.ReplaceAll(p.tok(i+1), ".", ""), 2
		}
	}
	if p.tok(i+n) == "o'clock" || p.tok(i+n) == "oclock" {
		n++
		afterAt = true
	}
	if minute > 59 || hour > 23 || (mer != "" && (hour < 1 || hour > 12)) {
		return 0, 0, "", 0
	}
	if mer == "" && !hasColon && !afterAt {
		return 0, 0, "", 0 // a bare number is not a time unless "at" says so
	}
	if mer == "" && (hour == 0 || hour > 12 || (hasColon && len(hs) == 2 && hs[0] == '0')) {
		mer = "24h" // "17:00", "09:30", "0:15": no am/pm to guess
	}
	return hour, minute, mer, n
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// hour24 turns a clock hour and its meridiem into 0-23; ambiguous is "" (either).
func hour24(h int, mer string) int {
	switch mer {
	case "am":
		if h == 12 {
			return 0
		}
	case "pm":
		if h < 12 {
			return h + 12
		}
	}
	return h
}

// resolve turns what was matched into a When.
func (p *whenParser) resolve() (When, bool) {
	w := When{Duration: p.duration, Days: max(p.days, 1)}
	if !p.hasDate && !p.hasTime && !p.hasInstant {
		return w, false
	}
	y, m, d := p.now.Date()
	if p.absDate {
		y, m, d = p.year, p.month, p.dom
	} else if p.hasDate {
		d += p.dayOffset
	}
	switch {
	case p.hasInstant && !p.hasTime:
		w.At, w.HasDate, w.HasTime = p.instant, p.hasDate, true
	case p.hasTime:
		mer := p.meridiem
		if mer == "part" {
			mer = "24h"
		}
		w.HasDate, w.HasTime = p.hasDate, true
		w.At = p.at(y, m, d, p.hour, p.minute, mer)
		if !p.hasDate && !w.At.After(p.now) {
			w.At = p.at(y, m, d+1, p.hour, p.minute, mer)
		}
		if p.weekdayOnly && !w.At.After(p.now) {
			w.At = p.at(y, m, d+7, p.hour, p.minute, mer)
		}
	default:
		w.At, w.HasDate = wallClock(y, m, d, 0, 0, p.loc), true
	}
	if p.hasEnd && w.HasTime {
		ey, em, ed := w.At.Date()
		mer := p.endMer
		if mer == "" && p.endHour <= 12 {
			// "from 3pm to 4": the end takes the start's half of the day, or the next one.
			mer = "am"
			if w.At.Hour() >= 12 {
				mer = "pm"
			}
		}
		end := wallClock(ey, em, ed, hour24(p.endHour, mer), p.endMin, p.loc)
		if !end.After(w.At) {
			end = end.Add(12 * time.Hour)
			if !end.After(w.At) {
				end = wallClock(ey, em, ed+1, hour24(p.endHour, mer), p.endMin, p.loc)
			}
		}
		w.End = end
	}
	return w, true
}

// at builds a time on a day. An hour without am/pm is the next of its two readings after now
// when the day is today, else a daytime guess (7-11 morning, 12-6 afternoon).
func (p *whenParser) at(y int, m time.Month, d, hour, minute int, mer string) time.Time {
	if mer != "" {
		return wallClock(y, m, d, hour24(hour, mer), minute, p.loc)
	}
	if !p.hasDate {
		for _, h := range []int{hour24(hour, "am"), hour24(hour, "pm")} {
			if c := wallClock(y, m, d, h, minute, p.loc); c.After(p.now) {
				return c
			}
		}
		return wallClock(y, m, d+1, hour24(hour, "am"), minute, p.loc)
	}
	if hour >= 7 && hour <= 11 {
		return wallClock(y, m, d, hour, minute, p.loc)
	}
	return wallClock(y, m, d, hour24(hour, "pm"), minute, p.loc)
}

// wallClock is time.Date, except that a clock time skipped by a DST change (2:30am on the
// night clocks go forward) is moved on by the gap (to 3:30am), as a wall clock would show it;
// time.Date leaves the choice unspecified.
func wallClock(y int, m time.Month, d, hour, minute int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, hour, minute, 0, 0, loc)
	want := time.Date(y, m, d, hour, minute, 0, 0, time.UTC)
	if t.Hour() == want.Hour() && t.Minute() == want.Minute() {
		return t
	}
	// The offset in force before the change, applied to the wall time asked for.
	_, before := t.Add(-12 * time.Hour).Zone()
	return want.Add(-time.Duration(before) * time.Second).In(loc)
}

// rest is text without the matched tokens, with spaces tidied.
func (p *whenParser) rest(text string) string {
	var b strings.Builder
	last := 0
	for i, t := range p.toks {
		if !p.used[i] {
			continue
		}
		b.WriteString(text[last:t.start])
		b.WriteByte(' ')
		last = t.end
	}
	b.WriteString(text[last:])
	out := strings.Join(strings.Fields(b.String()), " ")
	// Drop the punctuation the removed words leave behind: "call mom , please" -> "call mom, please".
	out = strings.NewReplacer(" ,", ",", " .", ".", " !", "!", " ?", "?").Replace(out)
	return strings.Trim(out, " ,;:-")
}
