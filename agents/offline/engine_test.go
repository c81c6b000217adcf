package offline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents/llm"
)

// builtinSection returns the body of the built-in knowledge section titled title.
func builtinSection(t *testing.T, title string) string {
	t.Helper()
	for _, s := range ParseKnowledge(builtinKnowledge) {
		if s.Title == title {
			return s.Body
		}
	}
	t.Fatalf("no built-in section %q", title)
	return ""
}

const cantAnswer = "I can't answer that offline"

func TestAnswer(t *testing.T) {
	e := newTestEngine()
	tests := []struct {
		question string
		first    bool
		exact    string // the whole answer, when set
		prefix   string
		contains string
	}{
		{question: "Hello!", first: true, prefix: "Hello! I'm Dartmouth's assistant"},
		{question: "Hello!", first: false, prefix: "Hello again!"},
		{question: "thanks!", contains: "You're welcome"},
		{question: "bye", contains: "Goodbye"},
		{question: "who are you?", contains: "offline engine"},
		{question: "what is 12 * 7", exact: "12 * 7 = 84"},
		{question: "what is 12 times (3 + 4)?", exact: "12 * (3 + 4) = 84"},
		{question: "15% of 200", exact: "15% * 200 = 30"},
		{question: "what is 7 divided by 2?", exact: "7 / 2 = 3.5"},
		{question: "what is 5 / 0", contains: "couldn't work out"},
		{question: "how do I configure an OpenAI key?", exact: builtinSection(t, "Configuring an OpenAI key or a local model")},
		{question: "what are the voice tiers?", exact: builtinSection(t, "Voice tiers and speech")},
		{question: "How does the fallback work?", exact: builtinSection(t, "Providers and fallback")},
		{question: "what time is it?", exact: "It's 15:30 (CET) on Friday, 15 March 2024."},
		{question: "What's the date today?", exact: "It's 15:30 (CET) on Friday, 15 March 2024."},
		{question: "zxcvbnm", prefix: "I didn't catch that"},
		{question: "what is the capital of France?", prefix: cantAnswer},
	}
	for _, tt := range tests {
		t.Run(tt.question, func(t *testing.T) {
			got := e.Answer(tt.question, tt.first)
			if tt.exact != "" && got != tt.exact {
				t.Errorf("Answer(%q) = %q, want %q", tt.question, got, tt.exact)
			}
			if !strings.HasPrefix(got, tt.prefix) {
				t.Errorf("Answer(%q) = %q, want it to start with %q", tt.question, got, tt.prefix)
			}
			if !strings.Contains(got, tt.contains) {
				t.Errorf("Answer(%q) = %q, want it to contain %q", tt.question, got, tt.contains)
			}
		})
	}
}

// Questions outside the knowledge base get one honest sentence that says so, the same whatever
// was asked: nothing of the question is echoed back as if it were an answer.
func TestAnswerOffTopicIsHonestAndNeverEchoes(t *testing.T) {
	e := newTestEngine()
	questions := []string{
		"what is the capital of France?",
		"Who won the world cup in 2018?",
		"Tell me about the weather in Paris",
		"Write me a poem about the sea",
	}
	want := e.Answer(questions[0], false)
	if !strings.Contains(want, "offline") || !strings.HasPrefix(want, cantAnswer) {
		t.Fatalf("off-topic answer %q should say it can't answer offline", want)
	}
	for _, q := range questions {
		got := e.Answer(q, false)
		if got != want {
			t.Errorf("Answer(%q) = %q, want the can't-answer sentence %q", q, got, want)
		}
		if strings.Contains(strings.ToLower(got), strings.ToLower(strings.TrimRight(q, "?"))) {
			t.Errorf("Answer(%q) echoes the question: %q", q, got)
		}
	}
}

func TestAnswerTimeDefaultsToUTC(t *testing.T) {
	e := New(Config{Clock: fixedClock{testNow}})
	if got, want := e.Answer("what is the time?", false), "It's 14:30 (UTC) on Friday, 15 March 2024."; got != want {
		t.Errorf("Answer = %q, want %q", got, want)
	}
}

func TestAnswerCustomKnowledgeAndMinScore(t *testing.T) {
	const md = "# Parking\nThe car park opens at seven.\n\n# Lunch\nThe canteen serves lunch from noon."
	const question = "where is the parking?"
	if got := New(Config{Knowledge: md, MinScore: 0.1}).Answer(question, false); got != "The car park opens at seven." {
		t.Errorf("with a low MinScore, Answer = %q, want the Parking section", got)
	}
	if got := New(Config{Knowledge: md, MinScore: 100}).Answer(question, false); !strings.HasPrefix(got, cantAnswer) {
		t.Errorf("with an unreachable MinScore, Answer = %q, want the can't-answer sentence", got)
	}
}

// collect drains a stream, stopping at the first error.
func collect(ctx context.Context, e *Engine, req llm.Request) ([]llm.Chunk, error) {
	var chunks []llm.Chunk
	for c, err := range e.Stream(ctx, req) {
		if err != nil {
			return chunks, err
		}
		chunks = append(chunks, c)
	}
	return chunks, nil
}

func userRequest(msgs ...string) llm.Request {
	req := llm.Request{System: "You are a test."}
	for i, m := range msgs {
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		req.Messages = append(req.Messages, llm.Message{Role: role, Content: m})
	}
	return req
}

func TestStream(t *testing.T) {
	e := newTestEngine()
	const question = "what are the voice tiers?"
	req := userRequest(question)
	chunks, err := collect(t.Context(), e, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) < 3 {
		t.Fatalf("got %d chunks, want the reply in several pieces and a usage chunk", len(chunks))
	}
	var text strings.Builder
	for i, c := range chunks[:len(chunks)-1] {
		if c.Text == "" || c.Usage != nil {
			t.Errorf("chunk %d = %+v, want text without usage", i, c)
		}
		if c.Model != ModelName {
			t.Errorf("chunk %d model = %q, want %q", i, c.Model, ModelName)
		}
		text.WriteString(c.Text)
	}
	if want := e.Answer(question, true); text.String() != want {
		t.Errorf("joined chunks = %q, want Answer's %q", text.String(), want)
	}
	last := chunks[len(chunks)-1]
	if last.Text != "" || last.Usage == nil || last.Model != ModelName {
		t.Fatalf("last chunk = %+v, want the usage alone", last)
	}
	wantInput := int64((len(req.System) + len(question) + 3) / 4)
	if last.Usage.InputTokens != wantInput || last.Usage.OutputTokens <= 0 || last.Usage.CachedInputTokens != 0 {
		t.Errorf("usage = %+v, want %d input tokens and some output", *last.Usage, wantInput)
	}
}

// The reply answers the last user message, and only a conversation's first message is greeted
// as its opening.
func TestStreamAnswersLastUserMessage(t *testing.T) {
	e := newTestEngine()
	tests := []struct {
		name string
		req  llm.Request
		want string
	}{
		{"opening", userRequest("Hello!"), e.Answer("Hello!", true)},
		{"follow-up", userRequest("what is 2 + 2", "2 + 2 = 4", "Hello!"), e.Answer("Hello!", false)},
		{"trailing assistant", userRequest("what is 2 + 2", "2 + 2 = 4"), "2 + 2 = 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks, err := collect(t.Context(), e, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			var text strings.Builder
			for _, c := range chunks {
				text.WriteString(c.Text)
			}
			if text.String() != tt.want {
				t.Errorf("reply = %q, want %q", text.String(), tt.want)
			}
		})
	}
}

func TestStreamStopsWhenConsumerBreaks(t *testing.T) {
	e := newTestEngine()
	n := 0
	for _, err := range e.Stream(t.Context(), userRequest("what are the voice tiers?")) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		break // the iterator must not yield again (the runtime would panic if it did)
	}
	if n != 1 {
		t.Errorf("got %d chunks, want 1", n)
	}
}

func TestStreamEndsWithContextError(t *testing.T) {
	e := newTestEngine()
	t.Run("cancelled mid-stream", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var texts int
		var errs []error
		for c, err := range e.Stream(ctx, userRequest("what are the voice tiers?")) {
			if err != nil {
				errs = append(errs, err)
				continue
			}
			texts++
			if c.Text != "" {
				cancel()
			}
		}
		if texts != 1 || len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
			t.Errorf("got %d chunks then errors %v, want 1 chunk then context.Canceled", texts, errs)
		}
	})
	t.Run("already expired", func(t *testing.T) {
		ctx, cancel := context.WithDeadline(t.Context(), time.Unix(0, 0))
		defer cancel()
		chunks, err := collect(ctx, e, userRequest("Hello!"))
		if len(chunks) != 0 || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %d chunks and %v, want none and context.DeadlineExceeded", len(chunks), err)
		}
	})
}

func TestEngineName(t *testing.T) {
	if got := New(Config{}).Name(); got != "offline" {
		t.Errorf("Name() = %q, want offline", got)
	}
}
