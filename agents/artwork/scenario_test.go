package artwork_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/artwork"
	"github.com/dartmouth-gw/dartmouth/agents/fam"
	"github.com/dartmouth-gw/dartmouth/agents/offline"
	"github.com/dartmouth-gw/dartmouth/gateway/gatewaytest"
	"github.com/dartmouth-gw/dartmouth/session"
)

// startGateway runs the real gateway on a loopback port, over a real SQLite file, with FAM
// and the Artwork Analyzer registered and the offline engine as the language model: the
// same wiring as cmd/dartmouth, plus this agent.
func startGateway(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	store, err := session.OpenSQLite(ctx, session.SQLiteConfig{Path: t.TempDir() + "/test.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	reg, err := agents.NewRegistry(fam.New(fam.Config{}), artwork.New(artwork.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	engine, err := agents.NewEngine(agents.EngineConfig{Store: store, Registry: reg, LLM: offline.New(offline.Config{}), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return gatewaytest.Serve(t, engine)
}

// chatReply is the JSON answer of POST /api/v2/chat.
type chatReply struct {
	SessionID string `json:"sessionId"`
	Content   string `json:"content"`
	Intent    string `json:"intent"`
	Metadata  struct {
		Provider string  `json:"provider"`
		Model    string  `json:"model"`
		Cost     float64 `json:"cost"`
	} `json:"metadata"`
}

func chat(t *testing.T, url string, body map[string]any) chatReply {
	t.Helper()
	var out chatReply
	gatewaytest.Chat(t, url, body, &out)
	return out
}

// The formulas, written out again so the scenarios check the agent against them rather than
// against its own code: DPI = round(px / (cm / 2.54)); in = px / dpi; cm = in * 2.54; cm to
// one decimal and inches to two, rounding half away from zero.

func dpiAt(px int, cm float64) int { return int(math.Round(float64(px) / (cm / 2.54))) }

func cm1(v float64) string { return fmt.Sprintf("%.1f", math.Round(v*10)/10) }
func in2(v float64) string { return fmt.Sprintf("%.2f", math.Round(v*100)/100) }

// side is one length: "20.0 cm (7.87 in)".
func side(cm float64) string { return cm1(cm) + " cm (" + in2(cm/2.54) + " in)" }

// size is a print size: "25.4 × 16.9 cm (10.00 × 6.67 in)".
func size(wcm, hcm float64) string {
	return cm1(wcm) + " × " + cm1(hcm) + " cm (" + in2(wcm/2.54) + " × " + in2(hcm/2.54) + " in)"
}

func band(dpi int) string {
	switch {
	case dpi >= 250:
		return "Optimal"
	case dpi >= 200:
		return "Good"
	}
	return "Poor"
}

// maxAt is the largest print of a w × h px artwork at dpi: "25.4 × 16.9 cm (10.00 × 6.67
// in) at 300 DPI (Optimal)".
func maxAt(w, h int, dpi int) string {
	return size(float64(w)/float64(dpi)*2.54, float64(h)/float64(dpi)*2.54) + fmt.Sprintf(" at %d DPI (%s)", dpi, band(dpi))
}

// atWidth is the answer for a width: "At 30.0 cm (11.81 in) wide, ... prints 20.0 cm (7.87
// in) tall at 254 DPI: Optimal".
func atWidth(w, h int, cm float64) []string {
	d := dpiAt(w, cm)
	return []string{"At " + side(cm) + " wide", "prints " + side(cm*float64(h)/float64(w)) + " tall", fmt.Sprintf("at %d DPI: %s", d, band(d))}
}

// turn is one message of a scenario and what its reply must say.
type turn struct {
	msg     string
	context map[string]any
	want    []string
	not     []string
	// intent and model, when set, must match the reply's.
	intent, model string
}

type scenario struct {
	name  string
	turns []turn
}

func TestScenariosThroughTheGateway(t *testing.T) {
	url := startGateway(t)
	rules, kb, calc := artwork.RulesModel, artwork.KnowledgeModel, "calculation"
	avgDPI := func(w, h int, wcm, hcm float64) int {
		return int(math.Round((float64(w)/(wcm/2.54) + float64(h)/(hcm/2.54)) / 2))
	}
	scenarios := []scenario{
		{"pixels and a DPI in one message", []turn{{
			msg:  "my image is 3000x2000 pixels, what size can I print at 300 dpi?",
			want: []string{"Your 3000 × 2000 px artwork prints at most " + maxAt(3000, 2000, 300)}, intent: calc, model: rules,
		}}},
		{"several DPIs", []turn{{
			msg:  "My artwork is 4500 x 3000 px. What size at 300, 250 and 150 dpi?",
			want: []string{maxAt(4500, 3000, 300), maxAt(4500, 3000, 250), maxAt(4500, 3000, 150)}, intent: calc, model: rules,
		}}},
		{"a width gives the height by aspect ratio", []turn{{
			msg:  "I have a 3000x2000 image, print it 30 cm wide",
			want: atWidth(3000, 2000, 30), intent: calc,
		}}},
		{"W x H cm gives the average DPI and flags another shape", []turn{{
			msg: "my 2400 x 1800 px artwork at 30 x 20 cm?",
			want: []string{
				"At " + size(30, 20) + ", your 2400 × 1800 px artwork prints at " + fmt.Sprint(avgDPI(2400, 1800, 30, 20)) + " DPI on average",
				fmt.Sprintf("(%d across, %d down): %s", dpiAt(2400, 30), dpiAt(1800, 20), band(avgDPI(2400, 1800, 30, 20))),
				"not the artwork's 4:3 shape", "at 30.0 cm wide it is " + side(30*1800.0/2400) + " tall",
			},
		}}},
		{"a pixel size, then follow-ups in the same session", []turn{
			{msg: "my image is 3000x2000 pixels", want: []string{"3:2", "up to " + size(25.4, 2000.0/300*2.54) + " at 300 DPI", "up to " + size(38.1, 25.4) + " at 200 DPI"}, intent: calc},
			{msg: "what about 30 cm wide?", want: atWidth(3000, 2000, 30)},
			{msg: "and 40 cm wide?", want: atWidth(3000, 2000, 40)},
			{msg: "what size at 150 dpi?", want: []string{maxAt(3000, 2000, 150)}},
		}},
		{"a corrected pixel size wins over the earlier one", []turn{
			{msg: "my image is 3000x2000 pixels", want: []string{"3000 × 2000 px"}},
			{msg: "sorry, it is actually 6000 x 4000 px", want: []string{"6000 × 4000 px"}},
			{msg: "what about 30 cm wide?", want: atWidth(6000, 4000, 30), not: []string{"3000 × 2000"}},
		}},
		{"artwork from the client's context", []turn{{
			msg:     "how big can I print this?",
			context: map[string]any{"artwork": map[string]any{"widthPx": 2400, "heightPx": 1600, "fileName": "logo.png"}},
			want:    []string{maxAt(2400, 1600, 300), maxAt(2400, 1600, 250), maxAt(2400, 1600, 200), maxAt(2400, 1600, 150)}, intent: calc,
		}}},
		{"context artwork is remembered through the history", []turn{
			{msg: "is it good for 10 cm wide?", context: map[string]any{"artwork": map[string]any{"widthPx": 1200, "heightPx": 1200, "dpi": 72}}, want: atWidth(1200, 1200, 10)},
			{msg: "what about 20 cm wide?", want: atWidth(1200, 1200, 20)},
		}},
		{"a size in the message wins over the context", []turn{{
			msg:     "my other file is 1000x1000 px, 10 cm wide?",
			context: map[string]any{"artwork": map[string]any{"widthPx": 2400, "heightPx": 1600}},
			want:    atWidth(1000, 1000, 10), not: []string{"2400"},
		}}},
		{"the slider in the context", []turn{{
			msg: "what's the quality at the current size?",
			context: map[string]any{
				"artwork": map[string]any{"widthPx": 3000, "heightPx": 2000},
				"slider":  map[string]any{"widthCm": 35, "heightCm": 23.3},
			},
			want: []string{"At " + size(35, 23.3), fmt.Sprintf("%d DPI on average (%d across, %d down): %s", avgDPI(3000, 2000, 35, 23.3), dpiAt(3000, 35), dpiAt(2000, 23.3), band(avgDPI(3000, 2000, 35, 23.3)))},
		}}},
		{"the earlier system's inline markers", []turn{
			{msg: `[Artwork Context: {"fileName":"a.png","dimensions":"3600x2400","dpi":300}] what size at 300 dpi?`, want: []string{maxAt(3600, 2400, 300)}},
			{msg: `[Slider: {"widthCm":40,"heightCm":26.7}]`, want: []string{"At " + size(40, 26.7) + ", your 3600 × 2400 px artwork", fmt.Sprintf("%d DPI on average", avgDPI(3600, 2400, 40, 26.7))}},
		}},
		{"a width in inches", []turn{{
			msg:  "3000x2000 px, 12 inches wide",
			want: []string{"At 30.5 cm (12.00 in) wide", "prints 20.3 cm (8.00 in) tall", fmt.Sprintf("at %d DPI: %s", 3000/12, band(3000/12))},
		}}},
		{"a height gives the width", []turn{{
			msg:  "3000x2000, 20 cm tall",
			want: []string{"At " + side(20) + " tall", "prints " + side(30) + " wide", fmt.Sprintf("at %d DPI: %s", dpiAt(2000, 20), band(dpiAt(2000, 20)))},
		}}},
		{"a DPI target that is not met", []turn{{
			msg:  "3000x2000 px: can I print 30 cm wide at 300 dpi?",
			want: append(atWidth(3000, 2000, 30), "below 300 DPI", "at most "+size(25.4, 2000.0/300*2.54), fmt.Sprintf("%d pixels across", int(math.Ceil(30/2.54*300)))),
		}}},
		{"no artwork yet: asks for it", []turn{{
			msg:  "what size can I print at 300 dpi?",
			want: []string{"pixel size", "upload"}, not: []string{"DPI (Optimal)"}, intent: calc,
		}}},
		{"no artwork, but a size and a DPI: the pixels needed", []turn{{
			msg:  "how many pixels do I need for 30 x 20 cm at 300 dpi?",
			want: []string{size(30, 20) + " at 300 DPI needs " + fmt.Sprintf("%d × %d pixels", int(math.Ceil(30/2.54*300)), int(math.Ceil(20/2.54*300)))},
		}}},
		{"a negative size", []turn{{
			msg:  "my image is 3000x2000, print it -30 cm wide",
			want: []string{"can't be negative", "your 3000 × 2000 px artwork prints up to " + size(25.4, 2000.0/300*2.54)}, intent: calc,
		}}},
		{"a zero size", []turn{{
			msg: "my image is 3000x2000, print at 0 cm wide", want: []string{"can't be 0 cm"}, not: []string{"DPI:"},
		}}},
		{"zero pixels", []turn{{
			msg: "my image is 0 x 0 pixels", want: []string{"at least 1 pixel"},
		}}},
		{"an absurd size", []turn{{
			msg: "3000x2000 px at 999999 cm wide", want: []string{"999999 cm", "far larger", "5000 cm"}, not: []string{"DPI:"},
		}}},
		{"an absurd DPI", []turn{{
			msg: "3000x2000 at 1000000 dpi", want: []string{"1000000 DPI is far beyond"},
		}}},
		{"sizes in words without numbers", []turn{
			{msg: "can I print it really big?", want: []string{"pixel size", "upload"}, intent: calc},
			{msg: "it's 3000x2000 px", want: []string{"3000 × 2000 px"}},
			{msg: "so can I print it really big?", want: []string{maxAt(3000, 2000, 300), maxAt(3000, 2000, 150), "in numbers"}},
		}},
		{"number words", []turn{{
			msg: "my image is three thousand by two thousand pixels, print it thirty centimetres wide", want: atWidth(3000, 2000, 30),
		}}},
		{"DTF or UV DTF", []turn{{
			msg: "what's the difference between DTF and UV DTF?", want: []string{"textiles", "hard substrates"}, model: kb,
		}}},
		{"DTF text and lines", []turn{{
			msg: "what's the smallest text for DTF?", want: []string{"8 pt", "2.5 mm", "1 mm"}, model: kb,
		}}},
		{"UV DTF text and lines", []turn{{
			msg: "minimum line thickness for UV DTF?", want: []string{"2 mm", "0.5 mm"}, model: kb,
		}}},
		{"UV DTF on fabric", []turn{{
			msg: "can I put UV DTF on a hoodie?", want: []string{"UV DTF suits hard substrates", "DTF suits textiles"}, model: kb,
		}}},
		{"a calculation with DTF guidance", []turn{{
			msg:  "my 3000x2000 logo goes on a t-shirt with DTF at 25 cm wide",
			want: append(atWidth(3000, 2000, 25), "textiles"), intent: calc,
		}}},
		{"greeting, thanks and goodbye", []turn{
			{msg: "hello", want: []string{"Artwork Analyzer"}, intent: "greeting", model: rules},
			{msg: "thanks!", want: []string{"welcome"}, intent: "gratitude"},
		}},
		{"prices are not its business", []turn{{
			msg: "how much does a print cost?", want: []string{"can't answer questions about prices"}, model: rules,
		}}},
		{"an open question goes to the language model", []turn{{
			msg: "who painted the Mona Lisa?", model: offline.ModelName,
		}}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			sid := ""
			for i, tn := range sc.turns {
				body := map[string]any{"agentId": artwork.ID, "message": tn.msg}
				if sid != "" {
					body["sessionId"] = sid
				}
				if tn.context != nil {
					body["context"] = tn.context
				}
				got := chat(t, url, body)
				if sid != "" && got.SessionID != sid {
					t.Fatalf("turn %d left session %s for %s", i+1, sid, got.SessionID)
				}
				sid = got.SessionID
				for _, w := range tn.want {
					if !strings.Contains(got.Content, w) {
						t.Errorf("turn %d %q:\n reply %q\n lacks %q", i+1, tn.msg, got.Content, w)
					}
				}
				for _, n := range tn.not {
					if strings.Contains(got.Content, n) {
						t.Errorf("turn %d %q: reply %q must not contain %q", i+1, tn.msg, got.Content, n)
					}
				}
				if tn.intent != "" && got.Intent != tn.intent {
					t.Errorf("turn %d %q: intent %q, want %q", i+1, tn.msg, got.Intent, tn.intent)
				}
				if tn.model != "" && got.Metadata.Model != tn.model {
					t.Errorf("turn %d %q: model %q, want %q (%q)", i+1, tn.msg, got.Metadata.Model, tn.model, got.Content)
				}
				if m := got.Metadata.Model; m == artwork.RulesModel || m == artwork.KnowledgeModel {
					if got.Metadata.Provider != artwork.ID || got.Metadata.Cost != 0 {
						t.Errorf("turn %d: the agent's own replies name it and cost nothing: %+v", i+1, got.Metadata)
					}
				}
				checkCentimetresFirst(t, got.Content)
			}
		})
	}
}

// checkCentimetresFirst: every inch figure follows a centimetre figure in brackets.
func checkCentimetresFirst(t *testing.T, reply string) {
	t.Helper()
	for i := strings.Index(reply, " in)"); i >= 0; {
		open := strings.LastIndex(reply[:i], "(")
		if open < 3 || !strings.HasSuffix(reply[:open], "cm ") {
			t.Errorf("inches without centimetres first near %q", reply[max(0, i-40):i+4])
		}
		next := strings.Index(reply[i+1:], " in)")
		if next < 0 {
			break
		}
		i += 1 + next
	}
}

// TestConversationsAreSeparate: a new session knows nothing of another's artwork.
func TestConversationsAreSeparate(t *testing.T) {
	url := startGateway(t)
	first := chat(t, url, map[string]any{"agentId": artwork.ID, "message": "my image is 3000x2000 pixels"})
	other := chat(t, url, map[string]any{"agentId": artwork.ID, "message": "what about 30 cm wide?"})
	if other.SessionID == first.SessionID || strings.Contains(other.Content, "DPI:") || !strings.Contains(other.Content, "pixel size") {
		t.Fatalf("a new session must ask for the artwork: %+v", other)
	}
	same := chat(t, url, map[string]any{"agentId": artwork.ID, "message": "what about 30 cm wide?", "sessionId": first.SessionID})
	if !strings.Contains(same.Content, "254 DPI") {
		t.Fatalf("the first session keeps its artwork: %q", same.Content)
	}
}

// TestStreamedCalculation: the SSE endpoint streams the agent's own reply in pieces that add
// up to the stored content.
func TestStreamedCalculation(t *testing.T) {
	url := startGateway(t)
	resp, err := http.Post(url+"/api/v2/chat/stream", "application/json",
		strings.NewReader(`{"agentId":"artwork","message":"my image is 3000x2000 px, what size at 300, 250 and 150 dpi?"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var deltas strings.Builder
	var done map[string]any
	sc := bufio.NewScanner(resp.Body)
	event, pieces := "", 0
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var data map[string]any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &data); err != nil {
				t.Fatal(err)
			}
			switch event {
			case "delta":
				deltas.WriteString(data["text"].(string))
				pieces++
			case "done":
				done = data
			case "error":
				t.Fatalf("error event: %v", data)
			}
		}
	}
	if done == nil || pieces < 2 || done["content"] != deltas.String() {
		t.Fatalf("pieces %d, deltas %q, done %v", pieces, deltas.String(), done)
	}
	if !strings.Contains(deltas.String(), maxAt(3000, 2000, 250)) {
		t.Fatalf("streamed reply %q", deltas.String())
	}
}
