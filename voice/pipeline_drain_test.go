package voice

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Drain lets the reply in progress finish and reach the consumer, refuses new input meanwhile,
// and returns only when nothing is left, so the Close after it loses nothing.
func TestPipelineDrainFinishesTheReplyInProgress(t *testing.T) {
	release := make(chan struct{})
	resp := &pipeResponder{respond: func(ctx context.Context, _ int, _ string, onDelta func(string) error) (Reply, error) {
		if err := onDelta("First part. "); err != nil {
			return Reply{}, err
		}
		select {
		case <-release:
		case <-ctx.Done():
			return Reply{}, ctx.Err()
		}
		return pipeStream(ctx, onDelta, "Second part.")
	}}
	h := pipeStart(t, PipelineConfig{TextOnly: true, Responder: resp})
	if err := h.p.PushText("tell me"); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.next().(ResponseDelta); !ok {
		t.Fatal("the first event is not the first delta")
	}

	h.p.CloseInput()
	drained := make(chan error, 1)
	go func() { drained <- h.p.Drain(context.Background()) }()
	if err := h.p.PushText("another question"); !errors.Is(err, ErrDraining) {
		t.Errorf("PushText while draining: %v, want ErrDraining", err)
	}
	if err := h.p.Push(make([]byte, 640)); !errors.Is(err, ErrDraining) {
		t.Errorf("Push while draining: %v, want ErrDraining", err)
	}
	select {
	case err := <-drained:
		t.Fatalf("Drain returned (%v) while the reply was still being generated", err)
	default:
	}

	close(release)
	var text strings.Builder
	text.WriteString("First part. ")
	for {
		ev := h.next()
		if d, ok := ev.(ResponseDelta); ok {
			text.WriteString(d.Text)
		}
		if done, ok := ev.(ResponseDone); ok {
			if done.Text != "First part. Second part." {
				t.Errorf("response.done text %q", done.Text)
			}
			break
		}
		if _, ok := ev.(ResponseInterrupted); ok {
			t.Fatal("the reply was interrupted by the drain")
		}
	}
	if err := <-drained; err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if got := text.String(); got != "First part. Second part." {
		t.Errorf("the consumer got %q", got)
	}
	if texts, _ := resp.Calls(); len(texts) != 1 {
		t.Errorf("responder calls %q: input taken while draining", texts)
	}
}

// Drain on an idle session returns at once; its context bounds a wait that would be too long.
func TestPipelineDrainIdleAndDeadline(t *testing.T) {
	h := pipeStart(t, PipelineConfig{TextOnly: true})
	if err := h.p.Drain(context.Background()); err != nil {
		t.Fatalf("Drain of an idle pipeline: %v", err)
	}

	hold := make(chan struct{})
	defer close(hold)
	resp := &pipeResponder{respond: func(ctx context.Context, _ int, _ string, onDelta func(string) error) (Reply, error) {
		select {
		case <-hold:
		case <-ctx.Done():
		}
		return Reply{}, ctx.Err()
	}}
	h2 := pipeStart(t, PipelineConfig{TextOnly: true, Responder: resp})
	if err := h2.p.PushText("wait"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := h2.p.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain past its deadline: %v, want context.DeadlineExceeded", err)
	}
}
