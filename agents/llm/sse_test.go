package llm

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll drains readSSE, keeping each event's data as yielded.
func readAll(r io.Reader) ([]sseEvent, error) {
	var events []sseEvent
	for ev, err := range readSSE(r) {
		if err != nil {
			return events, err
		}
		events = append(events, ev)
	}
	return events, nil
}

func ev(event, data string) sseEvent { return sseEvent{Event: event, Data: []byte(data)} }

func sameEvents(a, b []sseEvent) bool {
	return slices.EqualFunc(a, b, func(x, y sseEvent) bool { return x.Event == y.Event && bytes.Equal(x.Data, y.Data) })
}

func TestReadSSE(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []sseEvent
	}{
		{"empty", "", nil},
		{"only blank lines", "\n\n\n", nil},
		{"data only", "data: {\"a\":1}\n\n", []sseEvent{ev("", `{"a":1}`)}},
		{"named event", "event: message_start\ndata: {}\n\n", []sseEvent{ev("message_start", "{}")}},
		{"field order does not matter", "data: x\nevent: ping\n\n", []sseEvent{ev("ping", "x")}},
		{"multi-line data is joined with newlines", "data: a\ndata: b\ndata: c\n\n", []sseEvent{ev("", "a\nb\nc")}},
		{"comments are ignored", ": keep-alive\nevent: e\n: between fields\ndata: x\n\n: after\n\n", []sseEvent{ev("e", "x")}},
		{"no space after the colon", "event:e\ndata:x\n\n", []sseEvent{ev("e", "x")}},
		{"only one leading space is removed", "data:  x \n\n", []sseEvent{ev("", " x ")}},
		{"colons in the value are kept", "data: a:b: c\n\n", []sseEvent{ev("", "a:b: c")}},
		{"a field without colon has an empty value", "data\ndata: x\n\n", []sseEvent{ev("", "\nx")}},
		{"an empty data field is an event", "data:\n\n", []sseEvent{ev("", "")}},
		{"unknown fields are ignored", "id: 7\nretry: 1000\nfoo: bar\ndata: x\n\n", []sseEvent{ev("", "x")}},
		{"the last event field wins", "event: a\nevent: b\ndata: x\n\n", []sseEvent{ev("b", "x")}},
		{
			name: "events do not leak fields into the next",
			in:   "event: a\ndata: 1\n\ndata: 2\n\n\n\nevent: c\ndata: 3\n\n",
			want: []sseEvent{ev("a", "1"), ev("", "2"), ev("c", "3")},
		},
		{
			name: "CRLF line endings",
			in:   "event: a\r\ndata: 1\r\ndata: 2\r\n\r\n: c\r\ndata: 3\r\n\r\n",
			want: []sseEvent{ev("a", "1\n2"), ev("", "3")},
		},
		{"the last event without a blank line is dropped", "data: 1\n\ndata: 2\n", []sseEvent{ev("", "1")}},
		{"an unterminated last line is dropped", "data: 1\n\nevent: e\ndata: 2", []sseEvent{ev("", "1")}},
		{"OpenAI's terminator", "data: [DONE]\n\n", []sseEvent{ev("", "[DONE]")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !sameEvents(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadSSELineLimit(t *testing.T) {
	const prefix = "data: "
	// The longest line readable, with its newline, fills the buffer exactly.
	longest := strings.Repeat("x", maxSSELine-1-len(prefix))
	got, err := readAll(strings.NewReader("data: 1\n\n" + prefix + longest + "\n\n"))
	if err != nil || !sameEvents(got, []sseEvent{ev("", "1"), ev("", longest)}) {
		t.Errorf("longest line: %d events, %v", len(got), err)
	}

	tooLong := strings.Repeat("x", maxSSELine+1)
	got, err = readAll(strings.NewReader("data: 1\n\n" + prefix + tooLong + "\n\ndata: 2\n\n"))
	if !sameEvents(got, []sseEvent{ev("", "1")}) {
		t.Errorf("got %d events before the error, want 1", len(got))
	}
	if err == nil || !strings.Contains(err.Error(), "line over") {
		t.Errorf("error %v, want one about the line length", err)
	}
}

func TestReadSSEReadError(t *testing.T) {
	errRead := errors.New("connection reset")
	got, err := readAll(io.MultiReader(strings.NewReader("data: 1\n\ndata: 2\n"), iotest.ErrReader(errRead)))
	if !errors.Is(err, errRead) || !sameEvents(got, []sseEvent{ev("", "1")}) {
		t.Errorf("got %q, %v; want the complete event, then the read error", got, err)
	}
}

func TestReadSSEStopsWhenTheConsumerStops(t *testing.T) {
	r := strings.NewReader("data: 1\n\ndata: 2\n\n" + strings.Repeat("x", 2*maxSSELine))
	n := 0
	for _, err := range readSSE(r) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		break
	}
	if n != 1 {
		t.Errorf("got %d events", n)
	}
	if r.Len() == 0 {
		t.Error("read the whole body after the consumer stopped")
	}
}

func FuzzReadSSE(f *testing.F) {
	for _, seed := range []string{
		oaRole + oaText("Hello") + oaStop + oaUsage(10, 2, 3) + oaDone,
		anStart(25, 0, 0) + anBlockStart + anPing + anText("Hi") + anBlockStop + anMessageDelta(2) + anStop,
		"event: a\r\ndata: 1\r\ndata: 2\r\n\r\n: comment\r\n\r\n",
		"data\n\ndata:\n\nevent:\n\n:\n\n",
		"event: e\ndata: cut",
		"data: a\rdata: b\n\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		events, err := readAll(bytes.NewReader(in))
		if err != nil && len(in) <= maxSSELine {
			t.Fatalf("error on a %d-byte input: %v", len(in), err)
		}
		// Each event needs a blank line to end it.
		if n := bytes.Count(in, []byte("\n")); len(events) > n {
			t.Fatalf("%d events from %d lines", len(events), n)
		}
		for _, e := range events {
			if strings.Contains(e.Event, "\n") {
				t.Fatalf("event name %q spans lines", e.Event)
			}
			for line := range bytes.SplitSeq(e.Data, []byte("\n")) {
				if !bytes.Contains(in, line) {
					t.Fatalf("data line %q is not in the input", line)
				}
			}
		}
		// Events kept by the consumer must not change as reading goes on.
		var copied []sseEvent
		for e, err := range readSSE(bytes.NewReader(in)) {
			if err != nil {
				break
			}
			copied = append(copied, sseEvent{Event: e.Event, Data: bytes.Clone(e.Data)})
		}
		if !sameEvents(events, copied) {
			t.Fatalf("kept events %q changed; read afresh %q", events, copied)
		}
	})
}
