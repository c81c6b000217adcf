package artwork

import (
	"cmp"
	"encoding/json"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// request is what one message asks about sizes, as read by parseRequest.
type request struct {
	// pixels is an artwork size stated in the message ("my image is 3000x2000").
	pixels *Pixels
	// prints are the print sizes asked about, in the order given.
	prints []printSpec
	// dpis are the resolutions asked about ("at 300, 250 and 150 dpi").
	dpis []float64
	// wantsMax: "how big can I print", "what size", "maximum".
	wantsMax bool
	// wantsCurrent: "this size", "the current size", "the slider".
	wantsCurrent bool
	// negative: the message holds a negative number.
	negative bool
	// hasNumber: the message holds a number (digits or number words).
	hasNumber bool
	// sizing: the message talks about sizes or resolution at all.
	sizing bool
	// topic: the message mentions DTF, UV DTF, text or lines (knowledge-base subjects).
	topic bool
}

// empty reports whether the message asks for no calculation.
func (r request) empty() bool {
	return r.pixels == nil && len(r.prints) == 0 && len(r.dpis) == 0 && !r.wantsMax && !r.wantsCurrent
}

// printSpec is one print size: a width, a height or both.
type printSpec struct {
	width, height Length
	hasW, hasH    bool
	// assumed explains how the size was read when the user left something out: "width" (a
	// bare length taken as the width) or "cm" (a pair without units taken as centimetres).
	assumed string
}

const (
	numPat   = `(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+|,\d{1,2}\b)?|\.\d+)`
	lunitPat = `(mm|millimet(?:er|re)s?|cm|centimet(?:er|re)s?|met(?:er|re)s?|m|inch(?:es)?|in|ft|feet|foot)\b`
	unitPat  = `(px|pixels?|mm|millimet(?:er|re)s?|cm|centimet(?:er|re)s?|met(?:er|re)s?|m|inch(?:es)?|in|ft|feet|foot)\b`
	aboutPat = `(?:about|around|approx(?:imately)?\.?|roughly|~)?\s*`
)

var (
	pairRe     = regexp.MustCompile(numPat + `\s*(?:` + unitPat + `)?\s*(?:x|by|\*)\s*` + numPat + `\s*(?:` + unitPat + `)?`)
	pxWideRe   = regexp.MustCompile(`(\d[\d,]*)\s*(?:px|pixels?)\s*(?:wide|across|in width)\b`)
	pxHighRe   = regexp.MustCompile(`(\d[\d,]*)\s*(?:px|pixels?)\s*(?:tall|high|in height)\b`)
	widthRe1   = regexp.MustCompile(numPat + `\s*` + lunitPat + `\s*(?:wide|width|across|in width)\b`)
	widthRe2   = regexp.MustCompile(`\b(?:wide|width|across)\s*(?:of|is|=|:|at|to|by|would be|will be)?\s*` + aboutPat + numPat + `\s*` + lunitPat)
	heightRe1  = regexp.MustCompile(numPat + `\s*` + lunitPat + `\s*(?:tall|high|height|in height)\b`)
	heightRe2  = regexp.MustCompile(`\b(?:tall|high|height)\s*(?:of|is|=|:|at|to|would be|will be)?\s*` + aboutPat + numPat + `\s*` + lunitPat)
	bareRe     = regexp.MustCompile(numPat + `(\s*)` + lunitPat)
	dpiListRe  = regexp.MustCompile(`(\d+(?:\.\d+)?(?:\s*(?:dpi|ppi))?(?:\s*(?:,|and|or|&|/|vs\.?|versus|then)\s*(?:at\s+)?\d+(?:\.\d+)?(?:\s*(?:dpi|ppi))?)*)\s*(?:dpi|ppi)\b`)
	dpiAfterRe = regexp.MustCompile(`\b(?:dpi|ppi)\s*(?:of|=|:|is|at|to)?\s*(\d+(?:\.\d+)?)`)
	dpiNumRe   = regexp.MustCompile(`\d+(?:\.\d+)?`)
	unitNextRe = regexp.MustCompile(`^\s*(?:x\b|by\b|\*|px\b|pixels?\b|` + lunitPat + `)`)
	dpiNextRe  = regexp.MustCompile(`^\s*(?:dpi|ppi)\b`)
	negRe      = regexp.MustCompile(`(?:^|[^\w.])(?:-|minus |negative )\s*\.?\d`)
	digitRe    = regexp.MustCompile(`\d`)
	inchMarkRe = regexp.MustCompile(`(\d)\s*(?:"|''|″)`)
	hyphenRe   = regexp.MustCompile(`([a-z])-([a-z])`)
	sizingRe   = regexp.MustCompile(`\b(print|prints|printing|printed|size|sizes|sizing|big|bigger|large|larger|wide|width|tall|height|high|dimensions?|dpi|ppi|resolution|scale|enlarge|px|pixels?|cm|mm|inch|inches)\b`)
	maxRe      = regexp.MustCompile(`\b(how (big|large|wide|tall|high)|max|maximum|largest|biggest|what size|which size|what sizes|print sizes?|how far|as big as)\b`)
	followRe   = regexp.MustCompile(`^(what about|how about|and|or|what if|try|then)\b`)
	currentRe  = regexp.MustCompile(`\b(current|currently|this size|that size|slider|selected size|chosen size)\b`)
	topicRe    = regexp.MustCompile(`\b(dtf|uv|text|font|fonts|letters?|lettering|lines?|strokes?|thickness|pt)\b`)
	smallRe    = regexp.MustCompile(`\b(text|font|fonts|letters?|lettering|lines?|strokes?|thickness|thin|detail|details|pt|point)\b`)
	pixelWords = regexp.MustCompile(`\b(px|pixels?|image|artwork|photo|picture|file|logo|design|resolution)\b`)
)

// normalize lowercases a message and rewrites the ways people write sizes into one form:
// "×" becomes "x", 10" becomes "10 in", "dots per inch" becomes "dpi", number words become
// digits ("thirty" -> "30").
func normalize(text string) string {
	t := strings.ToLower(text)
	t = strings.NewReplacer(
		"×", " x ", "✕", " x ", "✖", " x ", "−", "-", "“", `"`, "”", `"`, "’", "'", "‘", "'",
		"dots per inch", "dpi", "pixels per inch", "ppi", "points per inch", "dpi",
		"centimeters", "cm", "centimetres", "cm", "millimeters", "mm", "millimetres", "mm",
	).Replace(t)
	t = inchMarkRe.ReplaceAllString(t, "$1 in ")
	t = hyphenRe.ReplaceAllString(t, "$1 $2")
	return numberWords(t)
}

var wordValues = map[string]int{
	"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
	"eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
	"fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
	"nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
	"seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
}

var numberWordRe = func() *regexp.Regexp {
	words := make([]string, 0, len(wordValues))
	for w := range wordValues {
		words = append(words, w)
	}
	// Longest first, so the pattern reads the same whatever the map's order.
	slices.SortFunc(words, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	alt := strings.Join(words, "|")
	return regexp.MustCompile(`\b(?:` + alt + `)(?:\s+(?:and\s+)?(?:` + alt + `))*\b`)
}()

// numberWords turns runs of English number words into digits: "two hundred and fifty" ->
// "250". A run that is not a well-formed number is summed word by word, which is harmless:
// it only matters when a unit follows.
func numberWords(t string) string {
	return numberWordRe.ReplaceAllStringFunc(t, func(run string) string {
		total, current := 0, 0
		for _, w := range strings.Fields(run) {
			v, ok := wordValues[w]
			if !ok {
				continue // "and"
			}
			switch {
			case v == 100:
				current = max(current, 1) * 100
			case v == 1000:
				total += max(current, 1) * 1000
				current = 0
			default:
				current += v
			}
		}
		return strconv.Itoa(total + current)
	})
}

// parseNumber reads a number as numPat matched it: "3,000" is three thousand, "25,5" is
// twenty-five and a half.
func parseNumber(s string) (float64, bool) {
	if i := strings.IndexByte(s, ','); i >= 0 {
		if len(s)-i-1 == 3 || strings.Count(s, ",") > 1 {
			s = strings.ReplaceAll(s, ",", "")
		} else {
			s = strings.Replace(s, ",", ".", 1)
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, false
	}
	return v, true
}

// unitOf maps a matched unit word to a Unit; px reports pixels.
func unitOf(word string) (u Unit, px bool) {
	switch {
	case word == "":
		return "", false
	case word == "px" || strings.HasPrefix(word, "pixel"):
		return "", true
	case word == "mm" || strings.HasPrefix(word, "millimet"):
		return MM, false
	case word == "cm" || strings.HasPrefix(word, "centimet"):
		return CM, false
	case word == "m" || strings.HasPrefix(word, "met"):
		return M, false
	case word == "in" || strings.HasPrefix(word, "inch"):
		return Inch, false
	case word == "ft" || word == "feet" || word == "foot":
		return Foot, false
	}
	return "", false
}

// masked is a message whose matched parts are blanked out as they are read, so one phrase
// is never read twice.
type masked []byte

func (m masked) blank(start, end int) {
	for i := start; i < end; i++ {
		m[i] = ' '
	}
}

// group returns submatch i of a FindAllStringSubmatchIndex result.
func group(s string, loc []int, i int) string {
	if loc[2*i] < 0 {
		return ""
	}
	return s[loc[2*i]:loc[2*i+1]]
}

// parseRequest reads the sizes, resolutions and questions in a message. Markers such as
// "[Slider: {...}]" must already be removed.
func parseRequest(message string) request {
	t := normalize(message)
	r := request{
		negative:     negRe.MatchString(t),
		hasNumber:    digitRe.MatchString(t),
		sizing:       sizingRe.MatchString(t),
		wantsMax:     maxRe.MatchString(t),
		wantsCurrent: currentRe.MatchString(t),
		topic:        topicRe.MatchString(t),
	}
	small := smallRe.MatchString(t)
	m := masked(t)
	// keep drops lengths under 1 cm when the message is about text or line sizes: "2 mm
	// text" is a detail size, not a print size.
	keep := func(l Length) bool { return !small || l.CM() >= 1 }

	// Pairs: "3000x2000", "30 x 20 cm", "12 by 8 inches".
	for _, loc := range pairRe.FindAllStringSubmatchIndex(string(m), -1) {
		s := string(m)
		if dpiNextRe.MatchString(s[loc[1]:]) {
			continue // "300 x 300 dpi" is a resolution
		}
		a, okA := parseNumber(group(s, loc, 1))
		b, okB := parseNumber(group(s, loc, 3))
		if !okA || !okB {
			continue
		}
		ua, pxA := unitOf(group(s, loc, 2))
		ub, pxB := unitOf(group(s, loc, 4))
		end := loc[1]
		if group(s, loc, 4) == "in" && !inchFollows(s[loc[1]:]) {
			ub, end = "", loc[7] // "3000 x 2000 in my file": "in" is a word here
		}
		switch {
		case pxA || pxB:
			if r.pixels == nil {
				r.pixels = &Pixels{W: clampInt(a), H: clampInt(b)}
			}
		case ua != "" || ub != "":
			if ua == "" {
				ua = ub
			}
			if ub == "" {
				ub = ua
			}
			p := printSpec{width: Length{a, ua}, height: Length{b, ub}, hasW: true, hasH: true}
			if !keep(p.width) || !keep(p.height) {
				continue
			}
			r.prints = append(r.prints, p)
		case a == math.Trunc(a) && b == math.Trunc(b) && max(a, b) >= 200:
			// Without units, large whole numbers are pixels: nobody prints 3000 cm wide.
			if r.pixels == nil {
				r.pixels = &Pixels{W: clampInt(a), H: clampInt(b)}
			}
		case r.sizing || followRe.MatchString(t):
			r.prints = append(r.prints, printSpec{width: Length{a, CM}, height: Length{b, CM}, hasW: true, hasH: true, assumed: "cm"})
		default:
			continue // "2 x 3" with nothing about sizes is not a size
		}
		m.blank(loc[0], end)
	}

	// "3000 px wide and 2000 px high".
	if r.pixels == nil {
		w := pxWideRe.FindStringSubmatchIndex(string(m))
		h := pxHighRe.FindStringSubmatchIndex(string(m))
		if w != nil && h != nil {
			s := string(m)
			a, okA := parseNumber(group(s, w, 1))
			b, okB := parseNumber(group(s, h, 1))
			if okA && okB {
				r.pixels = &Pixels{W: clampInt(a), H: clampInt(b)}
				m.blank(w[0], w[1])
				m.blank(h[0], h[1])
			}
		}
	}

	// Widths and heights: "30 cm wide", "a width of 30 cm", "20 inches tall".
	widths := findLengths(m, keep, widthRe1, widthRe2)
	heights := findLengths(m, keep, heightRe1, heightRe2)
	if len(widths) == 1 && len(heights) == 1 {
		r.prints = append(r.prints, printSpec{width: widths[0], height: heights[0], hasW: true, hasH: true})
	} else {
		for _, w := range widths {
			r.prints = append(r.prints, printSpec{width: w, hasW: true})
		}
		for _, h := range heights {
			r.prints = append(r.prints, printSpec{height: h, hasH: true})
		}
	}

	// Resolutions: "at 300, 250 and 150 dpi", "300dpi", "a dpi of 300".
	for _, loc := range dpiListRe.FindAllStringSubmatchIndex(string(m), -1) {
		for _, n := range dpiNumRe.FindAllString(group(string(m), loc, 1), -1) {
			if v, ok := parseNumber(n); ok {
				r.dpis = append(r.dpis, v)
			}
		}
		m.blank(loc[0], loc[1])
	}
	for _, loc := range dpiAfterRe.FindAllStringSubmatchIndex(string(m), -1) {
		s := string(m)
		if unitNextRe.MatchString(s[loc[1]:]) {
			continue // "dpi at 30 cm" asks for the dpi at a size
		}
		if v, ok := parseNumber(group(s, loc, 1)); ok {
			r.dpis = append(r.dpis, v)
			m.blank(loc[0], loc[1])
		}
	}

	// What is left: a bare "30 cm" is taken as the width.
	for _, loc := range bareRe.FindAllStringSubmatchIndex(string(m), -1) {
		s := string(m)
		v, ok := parseNumber(group(s, loc, 1))
		u, _ := unitOf(group(s, loc, 3))
		if !ok || u == "" {
			continue
		}
		if u == Inch && group(s, loc, 2) != "" && !inchFollows(s[loc[1]:]) {
			continue // "3 in a row" is not three inches
		}
		l := Length{v, u}
		if !keep(l) {
			continue
		}
		r.prints = append(r.prints, printSpec{width: l, hasW: true, assumed: "width"})
		m.blank(loc[0], loc[1])
	}
	return r
}

// findLengths reads the lengths matched by res (each with the number in group 1 and the unit
// in group 2) and blanks them out.
func findLengths(m masked, keep func(Length) bool, res ...*regexp.Regexp) []Length {
	var out []Length
	for _, re := range res {
		for _, loc := range re.FindAllStringSubmatchIndex(string(m), -1) {
			s := string(m)
			v, ok := parseNumber(group(s, loc, 1))
			u, _ := unitOf(group(s, loc, 2))
			if !ok || u == "" {
				continue
			}
			l := Length{v, u}
			if !keep(l) {
				continue
			}
			out = append(out, l)
			m.blank(loc[0], loc[1])
		}
	}
	return out
}

// inchFollows reports whether what follows a spaced "in" lets it be the unit: the end of the
// message or punctuation, not another word.
func inchFollows(rest string) bool {
	rest = strings.TrimLeft(rest, " ")
	if rest == "" {
		return true
	}
	r := rune(rest[0])
	return !unicode.IsLetter(r)
}

// clampInt converts a parsed pixel count, keeping absurd values absurd but representable.
func clampInt(v float64) int {
	if v > 1e12 {
		return 1e12
	}
	if v < 0 {
		return 0
	}
	return int(math.Round(v))
}

// Markers: clients of the earlier system put the artwork and the size slider into the
// message itself, as "[Artwork Context: {json}]" and "[Slider: {json}]".
var markerRe = regexp.MustCompile(`(?i)\[\s*(artwork context|slider)\s*:\s*`)

// markers is what a message's markers said.
type markers struct {
	artwork map[string]any
	slider  map[string]any
}

// extractMarkers removes the markers from a message and decodes them. A marker that is not
// valid JSON stays in the text.
func extractMarkers(text string) (string, markers) {
	var mk markers
	var out strings.Builder
	rest := text
	for {
		loc := markerRe.FindStringSubmatchIndex(rest)
		if loc == nil {
			out.WriteString(rest)
			break
		}
		kind := strings.ToLower(rest[loc[2]:loc[3]])
		body := rest[loc[1]:]
		dec := json.NewDecoder(strings.NewReader(body))
		var v map[string]any
		if err := dec.Decode(&v); err != nil {
			out.WriteString(rest[:loc[1]])
			rest = body
			continue
		}
		after := strings.TrimLeft(body[dec.InputOffset():], " \t\r\n")
		after = strings.TrimPrefix(after, "]")
		out.WriteString(rest[:loc[0]])
		out.WriteString(" ")
		if kind == "slider" {
			mk.slider = v
		} else {
			mk.artwork = v
		}
		rest = after
	}
	return strings.TrimSpace(out.String()), mk
}

// numberFrom reads a JSON-ish number: float64, int, json.Number or a numeric string.
func numberFrom(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, !math.IsNaN(n) && !math.IsInf(n, 0)
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case string:
		return parseNumber(strings.TrimSpace(n))
	}
	return 0, false
}

// firstNumber reads the first of keys present in m as a number.
func firstNumber(m map[string]any, keys ...string) (float64, bool) {
	for _, k := range keys {
		if v, ok := m[k]; ok {
			if f, ok := numberFrom(v); ok {
				return f, true
			}
		}
	}
	return 0, false
}

// artworkFromMap reads an artwork description as an upload endpoint or the earlier
// system's "[Artwork Context: ...]" gives it: {"widthPx":3000,"heightPx":2000,
// "fileName":"logo.png","dpi":72} or {"dimensions":"3000x2000"}.
func artworkFromMap(m map[string]any) (artworkSource, bool) {
	if m == nil {
		return artworkSource{}, false
	}
	src := artworkSource{}
	w, okW := firstNumber(m, "widthPx", "width_px", "widthPixels", "pixelWidth", "width")
	h, okH := firstNumber(m, "heightPx", "height_px", "heightPixels", "pixelHeight", "height")
	if okW && okH {
		src.px = Pixels{W: clampInt(w), H: clampInt(h)}
	} else if d, ok := m["dimensions"].(string); ok {
		r := parseRequest(d + " px")
		if r.pixels == nil {
			return artworkSource{}, false
		}
		src.px = *r.pixels
	} else {
		return artworkSource{}, false
	}
	if name, ok := m["fileName"].(string); ok && len(name) <= 200 {
		src.fileName = strings.TrimSpace(name)
	}
	if dpi, ok := firstNumber(m, "dpi", "dpiX"); ok && dpi > 0 && dpi < 100000 {
		src.fileDPI = dpi
	}
	return src, true
}

// sliderFromMap reads a size slider: {"widthCm":30,"heightCm":20} (or inches).
func sliderFromMap(m map[string]any) (printSpec, bool) {
	if m == nil {
		return printSpec{}, false
	}
	var p printSpec
	if w, ok := firstNumber(m, "widthCm", "width_cm"); ok {
		p.width, p.hasW = Length{w, CM}, true
	} else if w, ok := firstNumber(m, "widthInches", "widthIn", "width_in"); ok {
		p.width, p.hasW = Length{w, Inch}, true
	}
	if h, ok := firstNumber(m, "heightCm", "height_cm"); ok {
		p.height, p.hasH = Length{h, CM}, true
	} else if h, ok := firstNumber(m, "heightInches", "heightIn", "height_in"); ok {
		p.height, p.hasH = Length{h, Inch}, true
	}
	return p, p.hasW || p.hasH
}

// canonicalRe finds the artwork size the agent stated in an earlier reply.
var canonicalRe = regexp.MustCompile(`(?i)your (\d+) × (\d+) px artwork`)

// pixelsInReply reads the last artwork size the agent stated in a reply of its own.
func pixelsInReply(text string) (Pixels, bool) {
	all := canonicalRe.FindAllStringSubmatch(text, -1)
	if len(all) == 0 {
		return Pixels{}, false
	}
	last := all[len(all)-1]
	w, errW := strconv.Atoi(last[1])
	h, errH := strconv.Atoi(last[2])
	if errW != nil || errH != nil {
		return Pixels{}, false
	}
	return Pixels{W: w, H: h}, true
}
