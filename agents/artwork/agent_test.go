package artwork

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
)

// recorder is a provider that records the requests it gets and answers "ok".
type recorder struct {
	mu   sync.Mutex
	reqs []llm.Request
}

func (r *recorder) Name() string { return "recorder" }

func (r *recorder) Stream(_ context.Context, req llm.Request) iter.Seq2[llm.Chunk, error] {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return func(yield func(llm.Chunk, error) bool) {
		if yield(llm.Chunk{Text: "ok", Model: "rec-1"}, nil) {
			yield(llm.Chunk{Model: "rec-1", Usage: &llm.Usage{InputTokens: 1, OutputTokens: 1}}, nil)
		}
	}
}

// reply runs one turn and collects the streamed text and the model that answered.
func reply(t *testing.T, a *Agent, in agents.Input) (text, model string) {
	t.Helper()
	rep, err := a.Respond(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for c, err := range rep.Stream {
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(c.Text)
		if c.Model != "" {
			model = c.Model
		}
	}
	return b.String(), model
}

func TestRulesNeverCallTheModel(t *testing.T) {
	a := New(Config{})
	rec := &recorder{}
	for _, msg := range []string{
		"my image is 3000x2000 pixels", "what size at 300 dpi?", "30 cm wide", "-5 cm", "0 dpi",
		"what is UV DTF?", "hello", "thanks", "bye", "what can you do?", "how much is shipping?",
		"can I print it big?", `[Slider: {"widthCm":30}]`,
	} {
		text, model := reply(t, a, agents.Input{Message: msg, LLM: rec})
		if model != RulesModel && model != KnowledgeModel || text == "" {
			t.Errorf("%q: answered by %q: %q", msg, model, text)
		}
	}
	if len(rec.reqs) != 0 {
		t.Fatalf("the model was called %d times", len(rec.reqs))
	}
}

func TestOpenQuestionsGoToTheModelWithTheFacts(t *testing.T) {
	a := New(Config{Model: "cheap-1"})
	rec := &recorder{}
	temp := 0.9
	in := agents.Input{
		Message: "who painted the Mona Lisa?",
		History: []llm.Message{{Role: "user", Content: "hi"}, {Role: "assistant", Content: "Hi! I'm the Artwork Analyzer."}},
		Context: map[string]any{"artwork": map[string]any{"widthPx": 3000, "heightPx": 2000, "fileName": "logo.png"}},
		Options: agents.Options{Temperature: &temp, MaxTokens: 100, System: "Speak like a pirate."},
		LLM:     rec,
	}
	if text, model := reply(t, a, in); text != "ok" || model != "rec-1" {
		t.Fatalf("got %q from %q", text, model)
	}
	if len(rec.reqs) != 1 {
		t.Fatalf("%d requests", len(rec.reqs))
	}
	req := rec.reqs[0]
	for _, want := range []string{
		"centimetres first, then inches", "Never invent or calculate numbers", "two or three sentences",
		"Optimal at 250 DPI or more", "UV DTF is for hard substrates only",
		"## Instructions from the app\nSpeak like a pirate.",
		`The user's artwork is 3000 × 2000 px (aspect ratio 3:2), file "logo.png", as given in the upload.`,
		"Largest print at 300 DPI: 25.4 × 16.9 cm (10.00 × 6.67 in) at 300 DPI (Optimal).",
		"Largest print at 150 DPI: 50.8 × 33.9 cm (20.00 × 13.33 in) at 150 DPI (Poor).",
	} {
		if !strings.Contains(req.System, want) {
			t.Errorf("system prompt lacks %q:\n%s", want, req.System)
		}
	}
	if !strings.HasPrefix(req.System, SystemPrompt) || req.CachePrefix != len(SystemPrompt) {
		t.Error("the rules are the cacheable prefix")
	}
	if req.Model != "cheap-1" || req.MaxTokens != 100 || req.Temperature == nil || *req.Temperature != 0.9 {
		t.Errorf("options not honoured: %+v", req)
	}
	if n := len(req.Messages); n != 3 || req.Messages[n-1].Content != in.Message || req.Messages[0].Content != "hi" {
		t.Errorf("messages %+v", req.Messages)
	}
	// Without an artwork the model is told it is unknown, so it asks rather than guesses.
	rec.reqs = nil
	reply(t, a, agents.Input{Message: "who painted the Mona Lisa?", LLM: rec})
	if !strings.Contains(rec.reqs[0].System, "pixel size is not known yet") {
		t.Errorf("system prompt %s", rec.reqs[0].System)
	}
}

func TestStreamStopsWhenTheTurnIsCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rep, err := New(Config{}).Respond(ctx, agents.Input{Message: "my image is 3000x2000 pixels, what size at 300, 250, 200 and 150 dpi?"})
	if err != nil {
		t.Fatal(err)
	}
	var gotErr error
	pieces := 0
	for c, err := range rep.Stream {
		if err != nil {
			gotErr = err
			break
		}
		if c.Text != "" {
			pieces++
			cancel()
		}
	}
	if pieces != 1 || !errors.Is(gotErr, context.Canceled) {
		t.Fatalf("pieces %d, err %v", pieces, gotErr)
	}
}

// TestSharedBySessions runs many conversations at once on one agent: each gets its own
// numbers (the race detector checks the agent holds no shared mutable state).
func TestSharedBySessions(t *testing.T) {
	a := New(Config{})
	var wg sync.WaitGroup
	for i := range 32 {
		w := 1000 + 100*i
		wg.Go(func() {
			in := agents.Input{
				Message: "what about 25.4 cm wide?",
				History: []llm.Message{{Role: "user", Content: fmt.Sprintf("my image is %dx1000 px", w)}},
			}
			rep, err := a.Respond(context.Background(), in)
			if err != nil {
				t.Error(err)
				return
			}
			var b strings.Builder
			for c, err := range rep.Stream {
				if err != nil {
					t.Error(err)
					return
				}
				b.WriteString(c.Text)
			}
			// 25.4 cm is 10 inches: the DPI is the width in pixels over ten.
			if want := fmt.Sprintf("at %d DPI", DPIAt(w, 10)); !strings.Contains(b.String(), want) {
				t.Errorf("width %d: %q lacks %q", w, b.String(), want)
			}
		})
	}
	wg.Wait()
}
