package voice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/opus/pkg/oggreader"
	"go.uber.org/goleak"

	"github.com/dartmouth-gw/dartmouth/voice/audio"
)

// pipeClock is a PipelineClock moved by hand. In the default mode Advance fires due tickers
// without blocking, as time.Ticker does (a tick waits in a one-place buffer). A sync clock's
// tickers are unbuffered and ticked one by one with TickSync, which returns once the player
// took the tick.
type pipeClock struct {
	sync    bool
	mu      sync.Mutex
	now     time.Time
	tickers []*pipeTicker
	made    chan *pipeTicker // announces every new ticker
}

func newPipeClock(sync bool) *pipeClock {
	return &pipeClock{sync: sync, now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), made: make(chan *pipeTicker, 256)}
}

type pipeTicker struct {
	clock   *pipeClock
	c       chan time.Time
	period  time.Duration // under clock.mu
	next    time.Time     // under clock.mu
	stopped chan struct{}
	once    sync.Once
}

var _ PipelineClock = (*pipeClock)(nil)

func (c *pipeClock) NewTicker(d time.Duration) Ticker {
	c.mu.Lock()
	t := &pipeTicker{clock: c, period: d, next: c.now.Add(d), stopped: make(chan struct{}), c: make(chan time.Time, 1)}
	if c.sync {
		t.c = make(chan time.Time)
	}
	c.tickers = append(c.tickers, t)
	c.mu.Unlock()
	select {
	case c.made <- t:
	default:
	}
	return t
}

func (t *pipeTicker) C() <-chan time.Time { return t.c }

func (t *pipeTicker) Reset(d time.Duration) {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	t.period, t.next = d, t.clock.now.Add(d)
}

func (t *pipeTicker) Stop() { t.once.Do(func() { close(t.stopped) }) }

// Advance moves time on by d and fires the tickers that are due.
func (c *pipeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.tickers {
		select {
		case <-t.stopped:
			continue
		default:
		}
		if t.next.After(c.now) {
			continue
		}
		select {
		case t.c <- c.now:
		default:
		}
		for !t.next.After(c.now) {
			t.next = t.next.Add(t.period)
		}
	}
}

// TickSync gives t one tick and returns once it was taken, or false once t is stopped.
func (t *pipeTicker) TickSync() bool {
	select {
	case t.c <- time.Time{}:
		return true
	case <-t.stopped:
		return false
	}
}

// pipeRouter is a fake SpeechRouter. By default it hears pipeHeard and speaks 10 ms of a
// tone per character of text, at the rate asked, written in odd-sized pieces.
type pipeRouter struct {
	transcribe func(ctx context.Context, call int, req TranscribeReq) (*TranscribeResult, error)
	speak      func(ctx context.Context, call int, req SpeakRequest, w io.Writer) (*SpeakResult, error)

	mu      sync.Mutex
	sttReqs []TranscribeReq
	ttsReqs []SpeakRequest
}

var _ SpeechRouter = (*pipeRouter)(nil)

const pipeHeard = "what time is it"

func (r *pipeRouter) Transcribe(ctx context.Context, req TranscribeReq) (*TranscribeResult, error) {
	r.mu.Lock()
	call := len(r.sttReqs)
	r.sttReqs = append(r.sttReqs, req)
	r.mu.Unlock()
	if r.transcribe != nil {
		return r.transcribe(ctx, call, req)
	}
	return &TranscribeResult{Text: pipeHeard, Provider: "fake-stt", Tier: TierLocal}, nil
}

func (r *pipeRouter) SpeakTo(ctx context.Context, req SpeakRequest, w io.Writer) (*SpeakResult, error) {
	r.mu.Lock()
	call := len(r.ttsReqs)
	r.ttsReqs = append(r.ttsReqs, req)
	r.mu.Unlock()
	if r.speak != nil {
		return r.speak(ctx, call, req, w)
	}
	return pipeSpeak(ctx, req, w)
}

func (r *pipeRouter) STTRequests() []TranscribeReq {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sttReqs)
}

func (r *pipeRouter) TTSRequests() []SpeakRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ttsReqs)
}

// pipeSpeak writes 10 ms of a 220 Hz tone per character as PCM16 at req.SampleRate, in
// 1001-byte pieces (half samples included).
func pipeSpeak(ctx context.Context, req SpeakRequest, w io.Writer) (*SpeakResult, error) {
	return pipeSpeakAt(ctx, req, w, 100)
}

// pipeSpeakAt is pipeSpeak at charsPerSecond.
func pipeSpeakAt(ctx context.Context, req SpeakRequest, w io.Writer, charsPerSecond int) (*SpeakResult, error) {
	if req.Format != FormatPCM16 {
		return nil, fmt.Errorf("pipe tts: asked for %q", req.Format)
	}
	n := len([]rune(req.Text)) * req.SampleRate / charsPerSecond
	b := audio.PCM16ToBytes(vadTone(req.SampleRate, 220, time.Duration(n)*time.Second/time.Duration(req.SampleRate), 0.2))
	for len(b) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		k := min(1001, len(b))
		if _, err := w.Write(b[:k]); err != nil {
			return nil, err
		}
		b = b[k:]
	}
	return &SpeakResult{Format: FormatPCM16, SampleRate: req.SampleRate, Provider: "fake-tts", Tier: TierLocal,
		Chars: len([]rune(req.Text)), Bytes: int64(2 * n)}, nil
}

// pipeFrames is how many frames pipeSpeak's audio for text takes: 10 ms a character in
// 20 ms frames, the last one padded.
func pipeFrames(text string) int { return (len([]rune(text)) + 1) / 2 }

// pipeResponder is a fake Responder; by default it streams pipeReply.
type pipeResponder struct {
	respond func(ctx context.Context, call int, text string, onDelta func(string) error) (Reply, error)

	mu    sync.Mutex
	texts []string
	turns []int64
}

var _ Responder = (*pipeResponder)(nil)

var pipeReply = []string{"It is ", "ten past three. ", "Anything ", "else?"}

func (r *pipeResponder) Respond(ctx context.Context, text string, onDelta func(string) error) (Reply, error) {
	r.mu.Lock()
	call := len(r.texts)
	r.texts = append(r.texts, text)
	id, _ := TurnID(ctx)
	r.turns = append(r.turns, id)
	r.mu.Unlock()
	if r.respond != nil {
		return r.respond(ctx, call, text, onDelta)
	}
	return pipeStream(ctx, onDelta, pipeReply...)
}

func (r *pipeResponder) Calls() (texts []string, turns []int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.texts), slices.Clone(r.turns)
}

func pipeStream(ctx context.Context, onDelta func(string) error, deltas ...string) (Reply, error) {
	for _, d := range deltas {
		if err := onDelta(d); err != nil {
			return Reply{}, err
		}
	}
	return Reply{Text: strings.Join(deltas, ""), Info: "info"}, nil
}

// pipeSpeech is speech-like audio: a 300 Hz tone whose loudness swings at a syllable rate.
func pipeSpeech(rate int, d time.Duration) []int16 {
	s := vadTone(rate, 300, d, 1)
	for i := range s {
		env := 0.3 * (0.75 + 0.25*math.Sin(2*math.Pi*4*float64(i)/float64(rate)))
		s[i] = int16(float64(s[i]) * env)
	}
	return s
}

// pipeHarness runs a pipeline for a test.
type pipeHarness struct {
	t      *testing.T
	p      *Pipeline
	cfg    PipelineConfig
	clock  *pipeClock
	router *pipeRouter
	resp   *pipeResponder
	cancel context.CancelFunc
	runErr chan error
	seed   uint64
}

// pipeStart builds a pipeline from cfg (the fake router, responder and a hand-moved clock
// unless cfg has its own) and runs it until the test ends.
func pipeStart(t *testing.T, cfg PipelineConfig) *pipeHarness {
	t.Helper()
	h := pipeNew(t, cfg)
	h.run()
	return h
}

func pipeNew(t *testing.T, cfg PipelineConfig) *pipeHarness {
	t.Helper()
	h := &pipeHarness{t: t, runErr: make(chan error, 1)}
	if cfg.Clock == nil {
		h.clock = newPipeClock(false)
		cfg.Clock = h.clock
	} else if c, ok := cfg.Clock.(*pipeClock); ok {
		h.clock = c
	}
	if cfg.Router == nil && Tier(cfg.Tier) != TierNative {
		h.router = &pipeRouter{}
		cfg.Router = h.router
	} else if r, ok := cfg.Router.(*pipeRouter); ok {
		h.router = r
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Responder == nil {
		h.resp = &pipeResponder{}
		cfg.Responder = h.resp
	} else if r, ok := cfg.Responder.(*pipeResponder); ok {
		h.resp = r
	}
	p, err := NewPipeline(cfg)
	if err != nil {
		t.Fatalf("NewPipeline: %v", err)
	}
	h.p, h.cfg = p, p.cfg
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if h.cancel != nil {
			h.cancel()
			select {
			case <-h.runErr:
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after Close")
			}
		}
	})
	return h
}

func (h *pipeHarness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.runErr <- h.p.Run(ctx) }()
}

// next returns the next event; a missing event fails the test (the timeout only guards
// against a hang, it does not order anything).
func (h *pipeHarness) next() Event {
	h.t.Helper()
	select {
	case ev, ok := <-h.p.Events():
		if !ok {
			h.t.Fatal("events closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		h.t.Fatal("no event within 10 s")
	}
	return nil
}

// until reads events, moving the clock one frame on after each audio frame, until stop says
// so; it returns them all.
func (h *pipeHarness) until(stop func(Event) bool) []Event {
	h.t.Helper()
	var evs []Event
	for {
		ev := h.next()
		evs = append(evs, ev)
		if _, ok := ev.(ResponseAudio); ok && h.clock != nil {
			h.clock.Advance(FrameDuration)
		}
		if stop(ev) {
			return evs
		}
	}
}

// untilEnd reads events until turn's last event.
func (h *pipeHarness) untilEnd(turn int64) []Event {
	h.t.Helper()
	return h.until(func(ev Event) bool { return pipeEnds(ev, turn) })
}

func pipeEnds(ev Event, turn int64) bool {
	switch e := ev.(type) {
	case ResponseDone:
		return e.Turn == turn
	case ResponseInterrupted:
		return e.Turn == turn
	case Error:
		return e.Turn == turn
	case TranscriptFinal:
		return e.Turn == turn && e.Text == ""
	}
	return false
}

// push sends samples at the input rate in 20 ms frames of the input format.
func (h *pipeHarness) push(samples []int16) {
	h.t.Helper()
	rate := h.cfg.InputSampleRate
	for i := 0; i < len(samples); i += rate / 50 {
		f := samples[i:min(i+rate/50, len(samples))]
		var b []byte
		switch h.cfg.InputFormat {
		case FormatULaw:
			b = audio.EncodeULaw(f)
		case FormatALaw:
			b = audio.EncodeALaw(f)
		default:
			b = audio.PCM16ToBytes(f)
		}
		if err := h.p.Push(b); err != nil {
			h.t.Fatalf("Push: %v", err)
		}
	}
}

func (h *pipeHarness) quiet(d time.Duration) {
	h.seed++
	h.push(vadNoise(h.cfg.InputSampleRate, d, 0.001, h.seed))
}

// say pushes 400 ms of room noise (more than the pre-roll), speech for d, then enough quiet
// for the VAD to end it.
func (h *pipeHarness) say(d time.Duration) {
	h.quiet(400 * time.Millisecond)
	h.push(pipeSpeech(h.cfg.InputSampleRate, d))
	h.quiet(600 * time.Millisecond)
}

// pipeSplit sorts events by kind.
type pipeSplit struct {
	started, stopped int
	final            []TranscriptFinal
	deltas           []ResponseDelta
	audio            []ResponseAudio
	done             []ResponseDone
	interrupted      []ResponseInterrupted
	errs             []Error
}

func pipeSort(evs []Event) pipeSplit {
	var s pipeSplit
	for _, ev := range evs {
		switch e := ev.(type) {
		case SpeechStarted:
			s.started++
		case SpeechStopped:
			s.stopped++
		case TranscriptFinal:
			s.final = append(s.final, e)
		case ResponseDelta:
			s.deltas = append(s.deltas, e)
		case ResponseAudio:
			s.audio = append(s.audio, e)
		case ResponseDone:
			s.done = append(s.done, e)
		case ResponseInterrupted:
			s.interrupted = append(s.interrupted, e)
		case Error:
			s.errs = append(s.errs, e)
		}
	}
	return s
}

func pipeText(deltas []ResponseDelta) string {
	var b strings.Builder
	for _, d := range deltas {
		b.WriteString(d.Text)
	}
	return b.String()
}

func pipeWAVLen(t *testing.T, req TranscribeReq) time.Duration {
	t.Helper()
	pcm, err := audio.DecodeWAV(req.Audio)
	if err != nil {
		t.Fatalf("STT audio is not WAV: %v", err)
	}
	if pcm.Rate != 16000 || req.Format != FormatWAV || req.SampleRate != 16000 {
		t.Errorf("STT got %s at %d Hz (WAV says %d), want wav at 16000", req.Format, req.SampleRate, pcm.Rate)
	}
	return pcm.Duration()
}

// TestPipelineVoiceTurn: one spoken turn end to end, for each input and output format: the
// events in order, the utterance sent to STT, the TTS requests, 20 ms frames of the right
// size, and the latencies in ResponseDone.
func TestPipelineVoiceTurn(t *testing.T) {
	for _, tc := range []struct {
		name               string
		in                 string
		inRate             int
		out                string
		outRate, frameSize int
	}{
		{"pcm16 16k in, 24k out", FormatPCM16, 16000, FormatPCM16, 24000, 960},
		{"pcm16 48k in, 16k out", FormatPCM16, 48000, FormatPCM16, 16000, 640},
		{"pcm16 24k both", FormatPCM16, 24000, FormatPCM16, 24000, 960},
		{"g711 ulaw", FormatULaw, 8000, FormatULaw, 8000, 160},
		{"g711 alaw", FormatALaw, 0, FormatALaw, 0, 160},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := pipeStart(t, PipelineConfig{InputFormat: tc.in, InputSampleRate: tc.inRate, OutputFormat: tc.out,
				OutputSampleRate: tc.outRate, Tier: "local", Plan: PlanPaid, Voice: "kal16", Language: "en"})
			h.say(400 * time.Millisecond)
			evs := h.untilEnd(1)

			if _, ok := evs[0].(SpeechStarted); !ok {
				t.Fatalf("first event %#v, want SpeechStarted", evs[0])
			}
			if e, ok := evs[1].(SpeechStopped); !ok || e.Turn != 1 || e.AudioEndMs < 780 || e.AudioEndMs > 820 {
				t.Fatalf("second event %#v, want SpeechStopped of turn 1 ending near 800 ms", evs[1])
			}
			if e, ok := evs[2].(TranscriptFinal); !ok || e.Turn != 1 || e.Text != pipeHeard || e.Result == nil {
				t.Fatalf("third event %#v, want the transcript", evs[2])
			}
			if _, ok := evs[3].(ResponseDelta); !ok {
				t.Fatalf("fourth event %#v, want the first delta", evs[3])
			}
			s := pipeSort(evs)
			reply := strings.Join(pipeReply, "")
			if got := pipeText(s.deltas); got != reply {
				t.Errorf("deltas say %q, want %q", got, reply)
			}
			chunks := []string{"It is ten past three.", "Anything else?"}
			wantFrames := pipeFrames(chunks[0]) + pipeFrames(chunks[1])
			if len(s.audio) != wantFrames {
				t.Errorf("%d audio frames, want %d", len(s.audio), wantFrames)
			}
			outRate := max(tc.outRate, 8000)
			for i, a := range s.audio {
				if a.Turn != 1 || a.Seq != i || len(a.Audio) != tc.frameSize || a.Format != tc.out || a.SampleRate != outRate {
					t.Fatalf("frame %d: turn %d seq %d, %d bytes of %s at %d; want seq %d, %d bytes of %s at %d",
						i, a.Turn, a.Seq, len(a.Audio), a.Format, a.SampleRate, i, tc.frameSize, tc.out, outRate)
				}
			}
			done, ok := evs[len(evs)-1].(ResponseDone)
			if !ok {
				t.Fatalf("last event %#v, want ResponseDone", evs[len(evs)-1])
			}
			if done.Text != reply || done.Info != "info" || done.AudioMs != int64(20*wantFrames) || done.AudioErr != nil ||
				len(done.Speech) != 2 || done.DroppedFrames != 0 {
				t.Errorf("done %+v", done)
			}
			l := done.Latency
			if l.Transcript <= 0 || l.FirstToken < l.Transcript || l.FirstTTSByte < l.FirstToken || l.FirstAudio < l.FirstTTSByte {
				t.Errorf("latencies %+v: want each stage after the one before", l)
			}
			js, _ := json.Marshal(l)
			for _, k := range []string{"transcriptMs", "firstTokenMs", "firstTtsByteMs", "firstAudioMs"} {
				if !strings.Contains(string(js), `"`+k+`"`) {
					t.Errorf("latency JSON %s lacks %s", js, k)
				}
			}

			stt := h.router.STTRequests()
			if len(stt) != 1 || stt[0].Tier != "local" || stt[0].Plan != PlanPaid || stt[0].Language != "en" {
				t.Fatalf("STT requests %+v", stt)
			}
			// 300 ms of pre-roll, 400 ms of speech, 200 ms of kept silence (a few ms of
			// resampler delay aside).
			if d := pipeWAVLen(t, stt[0]); d < 860*time.Millisecond || d > 940*time.Millisecond {
				t.Errorf("utterance of %v sent to STT, want about 900 ms", d)
			}
			tts := h.router.TTSRequests()
			if len(tts) != 2 {
				t.Fatalf("TTS requests %+v", tts)
			}
			for i, r := range tts {
				if r.Text != chunks[i] || r.Format != FormatPCM16 || r.SampleRate != outRate || r.Voice != "kal16" ||
					r.Tier != "local" || r.Plan != PlanPaid {
					t.Errorf("TTS request %d: %+v", i, r)
				}
			}
			texts, turns := h.resp.Calls()
			if !slices.Equal(texts, []string{pipeHeard}) || !slices.Equal(turns, []int64{1}) {
				t.Errorf("responder got %q for turns %v", texts, turns)
			}
			if st := h.p.Stats(); st.Turns != 1 || st.Interrupted != 0 || st.AudioSent != int64(wantFrames) || st.DroppedAudio != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestPipelineBargeIn: speech during playback interrupts at once: the responder's context is
// cancelled, ResponseInterrupted says exactly how much audio the consumer took and what text
// that was, no audio of the turn follows, and the new utterance is answered.
func TestPipelineBargeIn(t *testing.T) {
	respondDone := make(chan error, 1)
	resp := &pipeResponder{respond: func(ctx context.Context, call int, text string, onDelta func(string) error) (Reply, error) {
		if call > 0 {
			return pipeStream(ctx, onDelta, "Sure.")
		}
		if _, err := pipeStream(ctx, onDelta, "The first sentence is here. ", "The second one follows. "); err != nil {
			return Reply{}, err
		}
		<-ctx.Done() // a long reply still being generated
		respondDone <- ctx.Err()
		return Reply{}, ctx.Err()
	}}
	// A voice speaking at 14 characters a second, as real ones do (and as the pipeline
	// assumes for a sentence whose audio is still being made).
	router := &pipeRouter{speak: func(ctx context.Context, _ int, req SpeakRequest, w io.Writer) (*SpeakResult, error) {
		return pipeSpeakAt(ctx, req, w, 14)
	}}
	h := pipeStart(t, PipelineConfig{Responder: resp, Router: router})
	h.say(400 * time.Millisecond)
	const taken = 40
	for played := 0; played < taken; {
		if _, ok := h.next().(ResponseAudio); ok {
			played++
			if played < taken {
				h.clock.Advance(FrameDuration) // the last frame taken gets no tick after it
			}
		}
	}

	h.quiet(100 * time.Millisecond)
	h.push(pipeSpeech(16000, 200*time.Millisecond))
	if st := h.p.Stats(); st.Interrupted != 1 {
		t.Fatalf("after the push returned: %+v, want the reply interrupted already", st)
	}
	if err := <-respondDone; !errors.Is(err, context.Canceled) {
		t.Errorf("responder context: %v, want cancelled", err)
	}
	h.quiet(600 * time.Millisecond)
	after := h.untilEnd(2)

	var intr *ResponseInterrupted
	for i, ev := range after {
		switch e := ev.(type) {
		case ResponseInterrupted:
			if intr != nil {
				t.Fatal("two ResponseInterrupted")
			}
			intr = &e
			if _, ok := after[i-1].(SpeechStarted); !ok {
				t.Errorf("ResponseInterrupted follows %#v, want SpeechStarted", after[i-1])
			}
		case ResponseAudio:
			if e.Turn == 1 {
				t.Fatalf("audio of turn 1 after the barge-in: %+v", e.Seq)
			}
		case ResponseDone:
			if e.Turn == 1 {
				t.Fatal("turn 1 ended twice")
			}
		}
	}
	if intr == nil {
		t.Fatal("no ResponseInterrupted")
	}
	// 40 of the first sentence's 97 frames (27 characters at 14 a second; 96 estimated while
	// it is still being made): 40*5/97 of its 5 words, rounded down.
	if intr.Turn != 1 || intr.Reason != InterruptSpeech || intr.PlayedMs != 20*taken || intr.PlayedText != "The first" ||
		intr.Text != "The first sentence is here. The second one follows. " {
		t.Errorf("interrupted %+v", *intr)
	}
	s := pipeSort(after)
	if len(s.final) != 1 || s.final[0].Turn != 2 || len(s.done) != 1 || s.done[0].Text != "Sure." {
		t.Errorf("turn 2: transcripts %+v, done %+v", s.final, s.done)
	}
	if st := h.p.Stats(); st.Turns != 2 || st.Interrupted != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestPipelineInterruptDiscardsUntakenAudio: frames queued for a consumer that has not taken
// them yet are never delivered after an interruption, and do not count as played.
func TestPipelineInterruptDiscardsUntakenAudio(t *testing.T) {
	clock := newPipeClock(true)
	h := pipeStart(t, PipelineConfig{Clock: clock})
	if err := h.p.PushText("hi"); err != nil {
		t.Fatal(err)
	}
	player := <-clock.made
	// Frames pile up behind the first event, which the consumer has not taken. A tick is
	// taken only once the one before was handled, so this ends.
	for h.p.Stats().AudioSent < 2 {
		if !player.TickSync() {
			t.Fatal("the player stopped early")
		}
	}
	if !h.p.Interrupt() {
		t.Fatal("nothing to interrupt")
	}
	s := pipeSort(h.untilEnd(1))
	if len(s.audio) != 0 || len(s.interrupted) != 1 || s.interrupted[0].PlayedMs != 0 || s.interrupted[0].PlayedText != "" ||
		s.interrupted[0].Reason != InterruptClient {
		t.Errorf("%d frames delivered, interrupted %+v; want none played", len(s.audio), s.interrupted)
	}
	if got := pipeText(s.deltas); got != strings.Join(pipeReply, "") {
		t.Errorf("deltas %q: text events must all arrive", got)
	}
}

// TestPipelineShortNoiseDoesNotInterrupt: a sound shorter than MinSpeech during playback
// neither starts speech nor stops the reply.
func TestPipelineShortNoiseDoesNotInterrupt(t *testing.T) {
	h := pipeStart(t, PipelineConfig{})
	h.say(400 * time.Millisecond)
	h.until(func(ev Event) bool { a, ok := ev.(ResponseAudio); return ok && a.Seq == 2 })
	h.quiet(100 * time.Millisecond)
	h.push(pipeSpeech(16000, 80*time.Millisecond)) // a cough
	h.quiet(100 * time.Millisecond)
	evs := h.untilEnd(1)
	s := pipeSort(evs)
	if s.started != 0 || len(s.interrupted) != 0 || len(s.done) != 1 {
		t.Fatalf("after the noise: %d speech starts, interrupted %+v, done %d", s.started, s.interrupted, len(s.done))
	}
	if n := len(s.audio) + 3; n != pipeFrames("It is ten past three.")+pipeFrames("Anything else?") {
		t.Errorf("%d frames played, want all", n)
	}
	if st := h.p.Stats(); st.Interrupted != 0 || st.Turns != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestPipelineSpeechDuringTranscription: when the user goes on speaking while their first
// words are being transcribed, that transcription is cancelled (nothing was said back yet,
// so no ResponseInterrupted) and both utterances go to STT together.
func TestPipelineSpeechDuringTranscription(t *testing.T) {
	sttStarted := make(chan struct{})
	sttCancelled := make(chan error, 1)
	router := &pipeRouter{transcribe: func(ctx context.Context, call int, req TranscribeReq) (*TranscribeResult, error) {
		if call == 0 {
			close(sttStarted)
			<-ctx.Done()
			sttCancelled <- ctx.Err()
			return nil, ctx.Err()
		}
		return &TranscribeResult{Text: "hello there and more"}, nil
	}}
	h := pipeStart(t, PipelineConfig{Router: router})
	h.say(400 * time.Millisecond)
	<-sttStarted
	h.say(400 * time.Millisecond)
	if err := <-sttCancelled; !errors.Is(err, context.Canceled) {
		t.Errorf("first transcription: %v, want cancelled", err)
	}
	evs := h.untilEnd(2)
	s := pipeSort(evs)
	if s.started != 2 || s.stopped != 2 || len(s.interrupted) != 0 || len(s.errs) != 0 {
		t.Fatalf("events %+v", evs)
	}
	var stops []SpeechStopped
	for _, ev := range evs {
		if e, ok := ev.(SpeechStopped); ok {
			stops = append(stops, e)
		}
	}
	if stops[0].Turn != 1 || stops[0].UtteranceMs != 900 || stops[1].Turn != 2 || stops[1].UtteranceMs != 1800 {
		t.Errorf("stops %+v, want turn 2 with both utterances (900 ms each)", stops)
	}
	reqs := router.STTRequests()
	if len(reqs) != 2 {
		t.Fatalf("%d transcriptions", len(reqs))
	}
	if d := pipeWAVLen(t, reqs[1]); d != 1800*time.Millisecond {
		t.Errorf("second transcription got %v of audio, want 1.8 s", d)
	}
	if len(s.final) != 1 || s.final[0].Turn != 2 || len(s.done) != 1 || s.done[0].Turn != 2 {
		t.Errorf("turn 2: %+v %+v", s.final, s.done)
	}
}

// TestPipelineClearInput: a cleared utterance starts no turn; the next one does.
func TestPipelineClearInput(t *testing.T) {
	h := pipeStart(t, PipelineConfig{})
	h.quiet(400 * time.Millisecond)
	h.push(pipeSpeech(16000, 300*time.Millisecond))
	h.p.ClearInput()
	h.quiet(600 * time.Millisecond)
	if st := h.p.Stats(); st.Turns != 0 {
		t.Fatalf("a cleared utterance started a turn: %+v", st)
	}
	h.say(300 * time.Millisecond)
	evs := h.untilEnd(1)
	if _, ok := evs[0].(SpeechStarted); !ok {
		t.Fatalf("first event %#v", evs[0])
	}
	s := pipeSort(evs)
	if s.started != 2 || s.stopped != 1 || len(s.done) != 1 {
		t.Errorf("events %+v", s)
	}
	if d := pipeWAVLen(t, h.router.STTRequests()[0]); d != 800*time.Millisecond {
		t.Errorf("STT got %v, want only the second utterance (800 ms)", d)
	}
}

// TestPipelineTextTurns: PushText turns, text only on the native tier and with TextOnly, with
// audio otherwise; a new text or Interrupt cancels the reply in progress.
func TestPipelineTextTurns(t *testing.T) {
	t.Run("native tier", func(t *testing.T) {
		h := pipeStart(t, PipelineConfig{Tier: "native"})
		if err := h.p.Push(make([]byte, 640)); !errors.Is(err, ErrBadRequest) {
			t.Errorf("Push on the native tier: %v, want ErrBadRequest", err)
		}
		if err := h.p.PushText("  what's up  "); err != nil {
			t.Fatal(err)
		}
		evs := h.untilEnd(1)
		s := pipeSort(evs)
		if len(s.audio) != 0 || len(s.final) != 0 || pipeText(s.deltas) != strings.Join(pipeReply, "") ||
			len(s.done) != 1 || s.done[0].AudioMs != 0 || len(s.done[0].Speech) != 0 {
			t.Errorf("events %+v", evs)
		}
		if texts, _ := h.resp.Calls(); !slices.Equal(texts, []string{"what's up"}) {
			t.Errorf("responder got %q", texts)
		}
	})
	t.Run("text only", func(t *testing.T) {
		h := pipeStart(t, PipelineConfig{TextOnly: true})
		h.say(300 * time.Millisecond)
		s := pipeSort(h.untilEnd(1))
		if len(s.final) != 1 || len(s.audio) != 0 || len(s.done) != 1 || len(h.router.TTSRequests()) != 0 {
			t.Errorf("transcripts %d, audio %d, done %d, TTS calls %d", len(s.final), len(s.audio), len(s.done), len(h.router.TTSRequests()))
		}
	})
	t.Run("with audio", func(t *testing.T) {
		h := pipeStart(t, PipelineConfig{})
		if err := h.p.PushText("hi"); err != nil {
			t.Fatal(err)
		}
		s := pipeSort(h.untilEnd(1))
		if len(s.audio) != pipeFrames("It is ten past three.")+pipeFrames("Anything else?") || len(s.done) != 1 {
			t.Errorf("audio %d, done %+v", len(s.audio), s.done)
		}
		if len(h.router.STTRequests()) != 0 {
			t.Error("text went to STT")
		}
	})
	t.Run("supersede and interrupt", func(t *testing.T) {
		blocked := &pipeResponder{respond: func(ctx context.Context, call int, text string, onDelta func(string) error) (Reply, error) {
			if err := onDelta("Working on " + text + ". "); err != nil {
				return Reply{}, err
			}
			<-ctx.Done()
			return Reply{}, ctx.Err()
		}}
		h := pipeStart(t, PipelineConfig{Responder: blocked})
		if err := h.p.PushText("one"); err != nil {
			t.Fatal(err)
		}
		for { // the first frame goes out at once; without a tick no second one follows
			if _, ok := h.next().(ResponseAudio); ok {
				break
			}
		}
		if err := h.p.PushText("two"); err != nil {
			t.Fatal(err)
		}
		evs := h.untilEnd(1)
		if e := evs[len(evs)-1].(ResponseInterrupted); e.Reason != InterruptText || e.PlayedMs != 20 {
			t.Errorf("first turn ended with %+v", e)
		}
		h.until(func(ev Event) bool { d, ok := ev.(ResponseDelta); return ok && d.Turn == 2 })
		if !h.p.Interrupt() {
			t.Fatal("Interrupt found no turn")
		}
		evs = h.untilEnd(2)
		e := evs[len(evs)-1].(ResponseInterrupted)
		if e.Reason != InterruptClient || e.Text != "Working on two. " {
			t.Errorf("second turn ended with %+v", e)
		}
		if h.p.Interrupt() {
			t.Error("Interrupt with nothing running reported a turn")
		}
	})
	t.Run("bad text", func(t *testing.T) {
		h := pipeStart(t, PipelineConfig{})
		for _, s := range []string{"", "   ", "\xff\xfe"} {
			if err := h.p.PushText(s); !errors.Is(err, ErrBadRequest) {
				t.Errorf("PushText(%q) = %v, want ErrBadRequest", s, err)
			}
		}
	})
}

// TestPipelineSlowConsumer: a consumer that reads nothing while a reply plays loses audio
// frames beyond AudioQueue (counted), but every text event.
func TestPipelineSlowConsumer(t *testing.T) {
	clock := newPipeClock(true)
	deltas := []string{"One two three four five. ", "Six seven eight nine ten. ", "Eleven twelve."}
	resp := &pipeResponder{respond: func(ctx context.Context, call int, text string, onDelta func(string) error) (Reply, error) {
		return pipeStream(ctx, onDelta, deltas...)
	}}
	h := pipeStart(t, PipelineConfig{Clock: clock, Responder: resp, AudioQueue: 3})
	if err := h.p.PushText("count"); err != nil {
		t.Fatal(err)
	}
	player := <-clock.made
	for player.TickSync() {
	}
	// Every frame has been emitted; now the consumer reads.
	evs := h.untilEnd(1)
	s := pipeSort(evs)
	total := pipeFrames("One two three four five.") + pipeFrames("Six seven eight nine ten.") + pipeFrames("Eleven twelve.")
	st := h.p.Stats()
	if st.AudioSent != int64(total) || st.DroppedAudio != int64(total-3) || len(s.audio) != 3 {
		t.Errorf("stats %+v, %d frames received; want %d sent, 3 received, the rest dropped", st, len(s.audio), total)
	}
	if got := pipeText(s.deltas); got != strings.Join(deltas, "") || len(s.deltas) != len(deltas) {
		t.Errorf("deltas %q, want all of them", got)
	}
	if len(s.done) != 1 || s.done[0].DroppedFrames != total-3 || s.done[0].AudioMs != 60 {
		t.Errorf("done %+v", s.done)
	}
}

// TestPipelineFailures: how each stage failing ends (or does not end) a turn.
func TestPipelineFailures(t *testing.T) {
	errDown := fmt.Errorf("%w: all down", ErrNoProvider)
	t.Run("stt fails", func(t *testing.T) {
		router := &pipeRouter{transcribe: func(context.Context, int, TranscribeReq) (*TranscribeResult, error) { return nil, errDown }}
		h := pipeStart(t, PipelineConfig{Router: router})
		h.say(300 * time.Millisecond)
		evs := h.untilEnd(1)
		e, ok := evs[len(evs)-1].(Error)
		if !ok || e.Code != ErrorCodeSTT || !errors.Is(e.Err, ErrNoProvider) || e.Message == "" {
			t.Errorf("last event %#v", evs[len(evs)-1])
		}
		if texts, _ := h.resp.Calls(); len(texts) != 0 {
			t.Error("the responder was called")
		}
	})
	t.Run("nothing heard", func(t *testing.T) {
		router := &pipeRouter{transcribe: func(context.Context, int, TranscribeReq) (*TranscribeResult, error) {
			return &TranscribeResult{Text: "  "}, nil
		}}
		h := pipeStart(t, PipelineConfig{Router: router})
		h.say(300 * time.Millisecond)
		h.untilEnd(1)
		if err := h.p.PushText("next"); err != nil {
			t.Fatal(err)
		}
		// Nothing of turn 1 comes after its empty transcript: the next event is turn 2's.
		if d, ok := h.next().(ResponseDelta); !ok || d.Turn != 2 {
			t.Errorf("after the empty transcript: %#v", d)
		}
	})
	t.Run("responder fails", func(t *testing.T) {
		errLLM := errors.New("llm down")
		resp := &pipeResponder{respond: func(ctx context.Context, call int, text string, onDelta func(string) error) (Reply, error) {
			_ = onDelta("Hello there. ")
			return Reply{}, errLLM
		}}
		h := pipeStart(t, PipelineConfig{Responder: resp})
		if err := h.p.PushText("hi"); err != nil {
			t.Fatal(err)
		}
		evs := h.untilEnd(1)
		if e, ok := evs[len(evs)-1].(Error); !ok || e.Code != ErrorCodeResponse || !errors.Is(e.Err, errLLM) {
			t.Errorf("last event %#v", evs[len(evs)-1])
		}
		if s := pipeSort(evs); len(s.done) != 0 || len(s.interrupted) != 0 {
			t.Errorf("also %+v %+v", s.done, s.interrupted)
		}
	})
	t.Run("tts fails on the second sentence", func(t *testing.T) {
		errTTS := errors.New("tts down")
		router := &pipeRouter{speak: func(ctx context.Context, call int, req SpeakRequest, w io.Writer) (*SpeakResult, error) {
			if call == 1 {
				return nil, errTTS
			}
			return pipeSpeak(ctx, req, w)
		}}
		h := pipeStart(t, PipelineConfig{Router: router})
		if err := h.p.PushText("hi"); err != nil {
			t.Fatal(err)
		}
		s := pipeSort(h.untilEnd(1))
		if len(s.done) != 1 || !errors.Is(s.done[0].AudioErr, errTTS) || s.done[0].Text != strings.Join(pipeReply, "") ||
			len(s.audio) != pipeFrames("It is ten past three.") {
			t.Errorf("done %+v with %d frames", s.done, len(s.audio))
		}
	})
	t.Run("responder that does not stream", func(t *testing.T) {
		resp := &pipeResponder{respond: func(context.Context, int, string, func(string) error) (Reply, error) {
			return Reply{Text: "All done.", Info: 42}, nil
		}}
		h := pipeStart(t, PipelineConfig{Responder: resp})
		if err := h.p.PushText("hi"); err != nil {
			t.Fatal(err)
		}
		s := pipeSort(h.untilEnd(1))
		if pipeText(s.deltas) != "All done." || len(s.audio) != pipeFrames("All done.") || len(s.done) != 1 ||
			s.done[0].Info != 42 || s.done[0].Text != "All done." {
			t.Errorf("deltas %+v, %d frames, done %+v", s.deltas, len(s.audio), s.done)
		}
	})
	t.Run("markdown is not read out", func(t *testing.T) {
		resp := &pipeResponder{respond: func(ctx context.Context, call int, text string, onDelta func(string) error) (Reply, error) {
			return pipeStream(ctx, onDelta, "## Steps\n", "- **Open** the app.\n", "---\n")
		}}
		h := pipeStart(t, PipelineConfig{Responder: resp})
		if err := h.p.PushText("how"); err != nil {
			t.Fatal(err)
		}
		h.untilEnd(1)
		var said []string
		for _, r := range h.router.TTSRequests() {
			said = append(said, r.Text)
		}
		if !slices.Equal(said, []string{"Steps", "Open the app."}) {
			t.Errorf("TTS asked to say %q", said)
		}
	})
	t.Run("bad frames", func(t *testing.T) {
		h := pipeStart(t, PipelineConfig{})
		if err := h.p.Push([]byte{1, 2, 3}); !errors.Is(err, ErrBadAudio) || !errors.Is(err, audio.ErrTruncated) {
			t.Errorf("odd pcm16 frame: %v", err)
		}
		if err := h.p.Push(nil); err != nil {
			t.Errorf("empty frame: %v", err)
		}
		h.say(300 * time.Millisecond) // the stream goes on
		if s := pipeSort(h.untilEnd(1)); len(s.done) != 1 {
			t.Error("no turn after a bad frame")
		}
		o := pipeStart(t, PipelineConfig{InputFormat: FormatOpus})
		if err := o.p.Push([]byte{0xff, 0xff, 0xff, 0xff}); !errors.Is(err, ErrBadAudio) {
			t.Errorf("garbage opus: %v", err)
		}
	})
}

// TestPipelineStops: Close and the end of Run's context stop every goroutine, whatever the
// pipeline is doing, close Events, and refuse further input.
func TestPipelineStops(t *testing.T) {
	blockSTT := &pipeRouter{transcribe: func(ctx context.Context, _ int, _ TranscribeReq) (*TranscribeResult, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	blockLLM := &pipeResponder{respond: func(ctx context.Context, call int, text string, onDelta func(string) error) (Reply, error) {
		_ = onDelta("Thinking about it. ")
		<-ctx.Done()
		return Reply{}, ctx.Err()
	}}
	blockTTS := &pipeRouter{speak: func(ctx context.Context, _ int, _ SpeakRequest, _ io.Writer) (*SpeakResult, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	for _, tc := range []struct {
		name   string
		cfg    PipelineConfig
		drive  func(h *pipeHarness)
		cancel bool // end Run's context instead of calling Close
	}{
		{"close idle", PipelineConfig{}, func(*pipeHarness) {}, false},
		{"cancel idle", PipelineConfig{}, func(*pipeHarness) {}, true},
		{"close during STT", PipelineConfig{Router: blockSTT}, func(h *pipeHarness) {
			h.say(300 * time.Millisecond)
			h.until(func(ev Event) bool { _, ok := ev.(SpeechStopped); return ok })
		}, false},
		{"cancel during STT", PipelineConfig{Router: blockSTT}, func(h *pipeHarness) {
			h.say(300 * time.Millisecond)
			h.until(func(ev Event) bool { _, ok := ev.(SpeechStopped); return ok })
		}, true},
		{"close while the LLM streams", PipelineConfig{Responder: blockLLM}, func(h *pipeHarness) {
			_ = h.p.PushText("hi")
			h.until(func(ev Event) bool { _, ok := ev.(ResponseAudio); return ok })
		}, false},
		{"cancel mid-turn while TTS works", PipelineConfig{Router: blockTTS}, func(h *pipeHarness) {
			_ = h.p.PushText("hi")
			h.until(func(ev Event) bool { _, ok := ev.(ResponseDelta); return ok })
		}, true},
		{"cancel mid-playback", PipelineConfig{}, func(h *pipeHarness) {
			_ = h.p.PushText("hi")
			h.until(func(ev Event) bool { a, ok := ev.(ResponseAudio); return ok && a.Seq == 1 })
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			h := pipeStart(t, tc.cfg)
			tc.drive(h)
			if tc.cancel {
				h.cancel()
			} else if err := h.p.Close(); err != nil {
				t.Fatal(err)
			}
			var err error
			select {
			case err = <-h.runErr:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return")
			}
			h.cancel = nil // the cleanup must not wait for it again
			if tc.cancel && !errors.Is(err, context.Canceled) || !tc.cancel && err != nil {
				t.Errorf("Run returned %v", err)
			}
			for range h.p.Events() { // closed: the loop ends
			}
			if err := h.p.Push(make([]byte, 640)); !errors.Is(err, ErrPipelineClosed) {
				t.Errorf("Push after the end: %v", err)
			}
			if err := h.p.PushText("hi"); !errors.Is(err, ErrPipelineClosed) {
				t.Errorf("PushText after the end: %v", err)
			}
		})
	}
	t.Run("close before run", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		h := pipeNew(t, PipelineConfig{})
		_ = h.p.PushText("queued")
		if err := h.p.Close(); err != nil {
			t.Fatal(err)
		}
		if _, ok := <-h.p.Events(); ok {
			t.Error("events open after Close")
		}
		if err := h.p.Run(context.Background()); err != nil {
			t.Errorf("Run after Close: %v", err)
		}
		if err := h.p.Run(context.Background()); err == nil {
			t.Error("second Run accepted")
		}
	})
	t.Run("stalled consumer", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		chatty := &pipeResponder{respond: func(ctx context.Context, call int, text string, onDelta func(string) error) (Reply, error) {
			return pipeStream(ctx, onDelta, strings.Split(strings.Repeat("word ", 20), " ")...)
		}}
		h := pipeStart(t, PipelineConfig{TextOnly: true, MaxQueuedText: 5, Responder: chatty})
		if err := h.p.PushText("hi"); err != nil { // 20 deltas: at most one taken, 5 queued
			t.Fatal(err)
		}
		select {
		case err := <-h.runErr:
			h.cancel = nil
			if !errors.Is(err, ErrEventsStalled) {
				t.Errorf("Run returned %v, want ErrEventsStalled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not give up on the consumer")
		}
	})
}

func TestNewPipelineRejectsBadConfig(t *testing.T) {
	r, resp := &pipeRouter{}, &pipeResponder{}
	for _, tc := range []struct {
		name string
		cfg  PipelineConfig
		want error
		msg  string
	}{
		{"no responder", PipelineConfig{Router: r}, nil, "Responder"},
		{"no router", PipelineConfig{Responder: resp}, nil, "Router"},
		{"input format", PipelineConfig{Router: r, Responder: resp, InputFormat: FormatMP3}, ErrBadRequest, "input format"},
		{"input rate", PipelineConfig{Router: r, Responder: resp, InputSampleRate: 500}, ErrBadRequest, "input sample rate"},
		{"g711 input rate", PipelineConfig{Router: r, Responder: resp, InputFormat: FormatULaw, InputSampleRate: 16000}, ErrBadRequest, "8000"},
		{"mp3 output", PipelineConfig{Router: r, Responder: resp, OutputFormat: FormatMP3}, ErrBadRequest, "mp3"},
		{"output rate", PipelineConfig{Router: r, Responder: resp, OutputSampleRate: 22051}, ErrBadRequest, "multiple of 50"},
		{"g711 output rate", PipelineConfig{Router: r, Responder: resp, OutputFormat: FormatALaw, OutputSampleRate: 16000}, ErrBadRequest, "8000"},
		{"unknown tier", PipelineConfig{Router: r, Responder: resp, Tier: "gold"}, ErrBadRequest, "tier"},
		{"premium on free", PipelineConfig{Router: r, Responder: resp, Tier: "premium"}, ErrTierNotAllowed, "free plan"},
		{"speed", PipelineConfig{Router: r, Responder: resp, Speed: -1}, ErrBadRequest, "speed"},
		{"vad", PipelineConfig{Router: r, Responder: resp, VAD: VADConfig{SampleRate: 16001}}, ErrBadRequest, "multiple of 50"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewPipeline(tc.cfg)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("NewPipeline: %v, want %v mentioning %q", err, tc.want, tc.msg)
			}
		})
	}
	_, err := NewPipeline(PipelineConfig{Router: r, Responder: resp, OutputFormat: FormatOpus})
	if audio.OpusEncoderAvailable != (err == nil) || !audio.OpusEncoderAvailable && !errors.Is(err, audio.ErrUnsupportedFormat) {
		t.Errorf("opus output (encoder available: %v): %v", audio.OpusEncoderAvailable, err)
	}
	if _, err := NewPipeline(PipelineConfig{Responder: resp, Tier: "native", OutputFormat: FormatOpus}); err != nil {
		t.Errorf("text-only opus session: %v", err) // no audio goes out: no encoder needed
	}
}

// TestPipelineOpusInput: Opus packets (libopus-made, from the audio package's fixture) are
// decoded to the VAD rate; Commit ends the utterance without waiting for silence.
func TestPipelineOpusInput(t *testing.T) {
	f, err := os.Open(filepath.Join("audio", "testdata", "sine440_48000_mono.opus"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	h := pipeStart(t, PipelineConfig{InputFormat: FormatOpus})
	silence := []byte{0xF8, 0xFF, 0xFE} // a 20 ms CELT frame of silence
	for range 25 {
		if err := h.p.Push(silence); err != nil {
			t.Fatal(err)
		}
	}
	packets := 0
	for {
		p, _, err := r.ParseNextPacket()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(string(p), "OpusTags") {
			continue
		}
		if err := h.p.Push(p); err != nil {
			t.Fatalf("packet %d: %v", packets, err)
		}
		packets++
	}
	if !h.p.Commit() {
		t.Fatal("Commit found no utterance")
	}
	if h.p.Commit() {
		t.Error("second Commit found one")
	}
	s := pipeSort(h.untilEnd(1))
	if s.started != 1 || s.stopped != 1 || len(s.done) != 1 {
		t.Fatalf("events: %+v", s)
	}
	// The tone and 300 ms of silence before it; libopus's 6.5 ms of pre-skip aside.
	if d := pipeWAVLen(t, h.router.STTRequests()[0]); d < 1250*time.Millisecond || d > 1350*time.Millisecond {
		t.Errorf("utterance of %v from %d packets, want about 1.3 s", d, packets)
	}
}

// pipeTTSProvider answers every request with WAV at 22050 Hz, as espeak-ng does, so the real
// router converts it to the PCM16 rate the pipeline asks for.
type pipeTTSProvider struct{}

func (pipeTTSProvider) Name() string { return "fake-espeak" }
func (pipeTTSProvider) Tier() Tier   { return TierLocal }
func (pipeTTSProvider) Synthesize(ctx context.Context, req SpeechRequest) (*Speech, error) {
	d := time.Duration(len([]rune(req.Text))) * 10 * time.Millisecond
	wav := audio.EncodeWAV(audio.PCM{Samples: vadTone(22050, 220, d, 0.2), Rate: 22050})
	return &Speech{Audio: io.NopCloser(strings.NewReader(string(wav))), Format: FormatWAV, Provider: "fake-espeak"}, nil
}

type pipeSTTProvider struct{}

func (pipeSTTProvider) Name() string { return "fake-sphinx" }
func (pipeSTTProvider) Tier() Tier   { return TierLocal }
func (pipeSTTProvider) Transcribe(ctx context.Context, req TranscribeRequest) (*Transcript, error) {
	if req.Format != FormatWAV {
		return nil, fmt.Errorf("got %s", req.Format)
	}
	return &Transcript{Text: pipeHeard, Provider: "fake-sphinx"}, nil
}

// TestPipelineWithRouter: the real tier router between the pipeline and local-tier providers:
// the WAV the engine makes reaches the client as 24 kHz PCM16 frames.
func TestPipelineWithRouter(t *testing.T) {
	router, err := NewRouter(RouterConfig{TTS: []TTS{pipeTTSProvider{}}, STT: []STT{pipeSTTProvider{}}})
	if err != nil {
		t.Fatal(err)
	}
	h := pipeStart(t, PipelineConfig{Router: router})
	h.say(300 * time.Millisecond)
	s := pipeSort(h.untilEnd(1))
	if len(s.final) != 1 || s.final[0].Text != pipeHeard || s.final[0].Result.Provider != "fake-sphinx" {
		t.Fatalf("transcript %+v", s.final)
	}
	if len(s.done) != 1 || len(s.done[0].Speech) != 2 || s.done[0].Speech[0].Provider != "fake-espeak" ||
		s.done[0].Speech[0].Format != FormatPCM16 || s.done[0].Speech[0].SampleRate != 24000 {
		t.Fatalf("done %+v", s.done)
	}
	for _, a := range s.audio {
		if len(a.Audio) != 960 {
			t.Fatalf("frame of %d bytes, want 960 (20 ms at 24 kHz)", len(a.Audio))
		}
	}
	if want := pipeFrames("It is ten past three.") + pipeFrames("Anything else?"); len(s.audio) < want-2 || len(s.audio) > want+2 {
		t.Errorf("%d frames, want about %d", len(s.audio), want)
	}
}

// BenchmarkPipelineEndOfSpeechToFirstAudio measures what the gateway adds between the end of
// speech (the push that completes the VAD's silence) and the first audio frame reaching the
// consumer, with instant STT, LLM and TTS and real pacing. Target: a median under 15 ms.
func BenchmarkPipelineEndOfSpeechToFirstAudio(b *testing.B) {
	p, err := NewPipeline(PipelineConfig{Router: &pipeRouter{}, Responder: &pipeResponder{}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx) }()
	defer func() {
		cancel()
		<-runErr
	}()
	frame := func(s []int16) [][]byte {
		var out [][]byte
		for i := 0; i+320 <= len(s); i += 320 {
			out = append(out, audio.PCM16ToBytes(s[i:i+320]))
		}
		return out
	}
	lead := frame(vadNoise(16000, 200*time.Millisecond, 0.001, 1))
	speech := frame(pipeSpeech(16000, 300*time.Millisecond))
	tail := frame(vadNoise(16000, 500*time.Millisecond, 0.001, 2)) // exactly SilenceDuration
	push := func(frames [][]byte) {
		for _, f := range frames {
			if err := p.Push(f); err != nil {
				b.Fatal(err)
			}
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		push(lead)
		push(speech)
		push(tail[:len(tail)-1])
		b.StartTimer()
		start := time.Now()
		push(tail[len(tail)-1:])
		if got := p.Stats().Turns; got != int64(i+1) {
			b.Fatalf("the last silent frame started turn %d, want %d", got, i+1)
		}
		for {
			ev := <-p.Events()
			if a, ok := ev.(ResponseAudio); ok && a.Turn == int64(i+1) {
				break
			}
		}
		lat = append(lat, time.Since(start))
		b.StopTimer()
		p.Interrupt()
		for {
			if e, ok := (<-p.Events()).(ResponseInterrupted); ok && e.Turn == int64(i+1) {
				break
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	median, p99 := lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
	b.ReportMetric(float64(median)/float64(time.Millisecond), "median-ms")
	b.ReportMetric(float64(p99)/float64(time.Millisecond), "p99-ms")
	if median > 15*time.Millisecond {
		b.Errorf("median end of speech to first audio %v, over the 15 ms target", median)
	}
}
