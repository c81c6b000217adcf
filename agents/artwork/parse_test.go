package artwork

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
)

// describeRequest flattens a request for comparison: "px=3000x2000 print=30cm×20cm dpi=300".
func describeRequest(r request) string {
	var parts []string
	if r.pixels != nil {
		parts = append(parts, fmt.Sprintf("px=%dx%d", r.pixels.W, r.pixels.H))
	}
	for _, p := range r.prints {
		s := "print="
		if p.hasW {
			s += fmtNum(p.width.Value) + string(p.width.Unit)
		}
		s += "×"
		if p.hasH {
			s += fmtNum(p.height.Value) + string(p.height.Unit)
		}
		if p.assumed != "" {
			s += "(" + p.assumed + ")"
		}
		parts = append(parts, s)
	}
	if len(r.dpis) > 0 {
		ds := make([]string, len(r.dpis))
		for i, d := range r.dpis {
			ds[i] = fmtNum(d)
		}
		parts = append(parts, "dpi="+strings.Join(ds, ","))
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{r.wantsMax, "max"}, {r.wantsCurrent, "current"}, {r.negative, "negative"}} {
		if f.on {
			parts = append(parts, f.name)
		}
	}
	return strings.Join(parts, " ")
}

func TestParseRequest(t *testing.T) {
	cases := []struct {
		msg  string
		want string
	}{
		// Pixel sizes.
		{"my image is 3000x2000 pixels", "px=3000x2000"},
		{"3000 × 2000", "px=3000x2000"},
		{"it's 3,000 by 2,000 px", "px=3000x2000"},
		{"3000px x 2000px", "px=3000x2000"},
		{"3000 pixels wide and 2000 pixels high", "px=3000x2000"},
		{"3000 x 2000 in my file", "px=3000x2000"},
		{"my image is 3000x2000 pixels, what size can I print at 300 dpi?", "px=3000x2000 dpi=300 max"},
		// Resolutions.
		{"what size at 300, 250 and 150 dpi", "dpi=300,250,150 max"},
		{"at 300dpi or 150 DPI", "dpi=300,150"},
		{"a dpi of 240", "dpi=240"},
		{"how big at 300 dots per inch", "dpi=300 max"},
		{"300 x 300 dpi", "dpi=300"},
		// Print sizes.
		{"30 x 20 cm", "print=30cm×20cm"},
		{"30cm x 20cm", "print=30cm×20cm"},
		{"12 x 8 inches", "print=12in×8in"},
		{`12" x 8"`, "print=12in×8in"},
		{"what about 30x20?", "print=30cm×20cm(cm)"},
		{"what about 30 cm wide?", "print=30cm×"},
		{"a width of 25,5 cm", "print=25.5cm×"},
		{"20 cm tall", "print=×20cm"},
		{"30 cm wide and 20 cm high", "print=30cm×20cm"},
		{"print it at 40 cm", "print=40cm×(width)"},
		{"1.5 m wide", "print=1.5m×"},
		{"300 mm wide", "print=300mm×"},
		{"thirty centimetres wide", "print=30cm×"},
		{"two hundred and fifty dpi", "dpi=250"},
		{"can I print it 30cm wide at 300 dpi?", "print=30cm× dpi=300"},
		{"dpi at 30 cm wide", "print=30cm×"},
		// Bad values are read, to be answered helpfully.
		{"-30 cm wide", "print=30cm× negative"},
		{"minus 5 cm", "print=5cm×(width) negative"},
		{"0 cm wide", "print=0cm×"},
		{"999999 cm wide", "print=999999cm×"},
		{"0x0 px", "px=0x0"},
		// Not sizes.
		{"3 in a row", ""},
		{"what is 2 x 3", ""},
		{"is 2 mm text ok for uv dtf", ""},
		{"lines 0.5 mm thick", ""},
		{"print it 30 cm wide with 2 mm text", "print=30cm×"},
		{"can I print it really big?", ""},
		{"what's the current dpi?", "current"},
		{"20-30 cm wide", "print=30cm×"},
	}
	for _, c := range cases {
		t.Run(c.msg, func(t *testing.T) {
			if got := describeRequest(parseRequest(c.msg)); got != c.want {
				t.Fatalf("parseRequest(%q) = %q, want %q", c.msg, got, c.want)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	r := parseRequest("can I print it really big?")
	if !r.sizing || r.hasNumber || !r.empty() {
		t.Fatalf("sizes in words: %+v", r)
	}
	if r := parseRequest("what about DTF text?"); !r.topic {
		t.Fatal("DTF text is a knowledge topic")
	}
}

func TestNumberWords(t *testing.T) {
	cases := map[string]string{
		"thirty cm":                           "30 cm",
		"twenty-five cm":                      "25 cm",
		"two hundred and fifty dpi":           "250 dpi",
		"three thousand by two thousand":      "3000 by 2000",
		"four thousand five hundred pixels":   "4500 pixels",
		"a hundred":                           "a 100",
		"one":                                 "1",
		"someone is twelve":                   "someone is 12",
		"seventeen hundred":                   "1700",
		"ninety nine and the rest of the day": "99 and the rest of the day",
	}
	for in, want := range cases {
		if got := numberWords(hyphenRe.ReplaceAllString(in, "$1 $2")); got != want {
			t.Errorf("numberWords(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExtractMarkers(t *testing.T) {
	msg := `what dpi is this? [Artwork Context: {"fileName":"logo.png","dimensions":"4000x3000","dpi":72,"recommendedSizes":{"at300dpi":{"w_cm":33.9}}}] [Slider: {"widthCm":30,"heightCm":22.5,"dpi":339}]`
	text, mk := extractMarkers(msg)
	if text != "what dpi is this?" {
		t.Fatalf("text %q", text)
	}
	src, ok := artworkFromMap(mk.artwork)
	if !ok || src.px != (Pixels{4000, 3000}) || src.fileName != "logo.png" || src.fileDPI != 72 {
		t.Fatalf("artwork %+v %v", src, ok)
	}
	s, ok := sliderFromMap(mk.slider)
	if !ok || s.width != (Length{30, CM}) || s.height != (Length{22.5, CM}) {
		t.Fatalf("slider %+v", s)
	}
	// A marker that is not JSON stays in the text.
	if text, mk := extractMarkers("[Slider: {broken] hi"); text != "[Slider: {broken] hi" || mk.slider != nil {
		t.Fatalf("broken marker: %q %+v", text, mk)
	}
	// Context values as an upload endpoint sends them.
	for _, m := range []map[string]any{
		{"widthPx": 3000.0, "heightPx": 2000.0},
		{"widthPx": "3000", "heightPx": "2000"},
		{"width": 3000, "height": 2000},
		{"dimensions": "3000 x 2000"},
	} {
		if src, ok := artworkFromMap(m); !ok || src.px != (Pixels{3000, 2000}) {
			t.Errorf("artworkFromMap(%v) = %+v %v", m, src, ok)
		}
	}
	for _, m := range []map[string]any{nil, {}, {"widthPx": true}, {"dimensions": "big"}} {
		if _, ok := artworkFromMap(m); ok {
			t.Errorf("artworkFromMap(%v) should find nothing", m)
		}
	}
}

func TestArtworkFromHistory(t *testing.T) {
	a := New(Config{})
	cases := []struct {
		name    string
		history []llm.Message
		summary string
		want    Pixels
		found   bool
	}{
		{"user stated", []llm.Message{{Role: "user", Content: "my image is 3000x2000"}, {Role: "assistant", Content: "ok"}}, "", Pixels{3000, 2000}, true},
		{"agent restated", []llm.Message{{Role: "user", Content: "hi"}, {Role: "assistant", Content: "Your 4000 × 3000 px artwork prints…"}}, "", Pixels{4000, 3000}, true},
		{"newest wins", []llm.Message{{Role: "user", Content: "3000x2000"}, {Role: "user", Content: "no wait, it is 6000 x 4000 px"}}, "", Pixels{6000, 4000}, true},
		{"needed pixels are not the artwork", []llm.Message{{Role: "assistant", Content: "30 cm wide at 300 DPI needs 3544 × 2363 pixels."}}, "", Pixels{}, false},
		{"invalid sizes are skipped", []llm.Message{{Role: "user", Content: "3000x2000"}, {Role: "user", Content: "0x0 px"}}, "", Pixels{3000, 2000}, true},
		{"uploaded marker", []llm.Message{{Role: "user", Content: `[Artwork Context: {"widthPx":1200,"heightPx":800}]`}}, "", Pixels{1200, 800}, true},
		{"from the summary", nil, "user: my logo is 2400 x 1600 px.", Pixels{2400, 1600}, true},
		{"nothing", []llm.Message{{Role: "user", Content: "hello"}}, "", Pixels{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src, ok := a.artworkFromHistory(c.history, c.summary)
			if ok != c.found || src.px != c.want {
				t.Fatalf("got %+v %v, want %+v %v", src.px, ok, c.want, c.found)
			}
		})
	}
}

func TestKnowledgeSections(t *testing.T) {
	a := New(Config{})
	cases := map[string]string{
		"what is the difference between DTF and UV DTF?": "DTF or UV DTF",
		"what is UV DTF?":                     "UV DTF printing",
		"minimum text size for dtf":           "Minimum text size and line thickness for DTF",
		"how thin can lines be for uv dtf":    "Minimum text size and line thickness for UV DTF",
		"which file format should I send":     "Best file format for printing",
		"how do I find my image's pixel size": "How to find your image's pixel size",
	}
	for q, title := range cases {
		hits := a.index.Search(q, 1)
		if len(hits) == 0 || !strings.HasPrefix(hits[0].Section.Title, title) || hits[0].Score < a.cfg.MinScore {
			t.Errorf("%q: got %+v, want section %q above %v", q, hits, title, a.cfg.MinScore)
		}
	}
	if !slices.Equal(New(Config{}).cfg.TableDPIs, []float64{300, 250, 200, 150}) {
		t.Fatal("default table")
	}
}

// FuzzRespond sends arbitrary messages, with an artwork in the history, through the agent's
// rules: it never panics and always ends its reply with the usage chunk. Open questions
// would go to the language model, which is absent here, so the agent's fallback answers.
func FuzzRespond(f *testing.F) {
	for _, seed := range []string{
		"my image is 3000x2000 pixels", "what size at 300, 250 and 150 dpi?", "30 x 20 cm", "-30 cm wide",
		"999999 cm wide", "0 x 0 px", "[Slider: {\"widthCm\":0}]", "[Artwork Context: {\"widthPx\":1e308,\"heightPx\":-1}]",
		"1e400 cm wide", "thirty thousand thousand by one px", ".5 mm x .5 mm", "3,000,000,000,000 x 2 px",
		"what about 30x20?", "12\" x 8\"", "dpi of 0.0000001", "hello", "what is DTF?",
	} {
		f.Add(seed)
	}
	a := New(Config{})
	history := []llm.Message{{Role: "user", Content: "my image is 3000x2000"}, {Role: "assistant", Content: "Your 3000 × 2000 px artwork …"}}
	f.Fuzz(func(t *testing.T, msg string) {
		for _, h := range [][]llm.Message{nil, history} {
			rep, err := a.Respond(t.Context(), agents.Input{Message: msg, History: h, Context: map[string]any{"artwork": map[string]any{"dimensions": msg}}})
			if err != nil {
				t.Fatal(err)
			}
			var text strings.Builder
			complete := false
			for c, err := range rep.Stream {
				if err != nil {
					t.Fatal(err)
				}
				text.WriteString(c.Text)
				complete = complete || c.Usage != nil
			}
			if !complete || strings.TrimSpace(text.String()) == "" {
				t.Fatalf("%q: incomplete or empty reply %q", msg, text.String())
			}
			if strings.Contains(text.String(), "NaN") || strings.Contains(text.String(), "+Inf") {
				t.Fatalf("%q: reply %q", msg, text.String())
			}
		}
	})
}
