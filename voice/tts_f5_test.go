package voice

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ttsF5Server is a stand-in for F5-TTS's socket_server.py: it accepts connections one after the
// other, reads the text up to the client's half-close, hands the connection to answer and
// closes it. Texts received are recorded in order.
type ttsF5Server struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	texts []string
}

func ttsStartF5Server(t *testing.T, answer func(conn net.Conn, text string, n int)) *ttsF5Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &ttsF5Server{ln: ln}
	s.wg.Go(func() {
		for n := 0; ; n++ {
			conn, err := ln.Accept()
			if err != nil {
				return // listener closed
			}
			text, err := io.ReadAll(conn)
			if err != nil {
				conn.Close()
				continue
			}
			s.mu.Lock()
			s.texts = append(s.texts, string(text))
			s.mu.Unlock()
			answer(conn, string(text), n)
			conn.Close()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *ttsF5Server) Addr() string { return s.ln.Addr().String() }

func (s *ttsF5Server) Texts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.texts)
}

// ttsFloats encodes samples the way socket_server.py does: struct.pack("%df"), little-endian
// float32 on every machine it runs on.
func ttsFloats(samples ...float32) []byte {
	b := make([]byte, 0, 4*len(samples))
	for _, v := range samples {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// ttsPCM16 decodes little-endian PCM16.
func ttsPCM16(b []byte) []int16 {
	out := make([]int16, len(b)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

func ttsNewF5(t *testing.T, cfg F5TTSConfig) *F5TTS {
	t.Helper()
	f, err := NewF5TTS(cfg)
	if err != nil {
		t.Fatalf("NewF5TTS: %v", err)
	}
	return f
}

func TestTTSF5Config(t *testing.T) {
	for _, cfg := range []F5TTSConfig{
		{},
		{BaseURL: "http://f5:5060/v1", Addr: "f5:9998"},
		{Addr: "no-port"},
		{BaseURL: "f5:5060"},
	} {
		if _, err := NewF5TTS(cfg); err == nil {
			t.Errorf("NewF5TTS(%+v) succeeded", cfg)
		}
	}
	f := ttsNewF5(t, F5TTSConfig{Addr: "127.0.0.1:9998"})
	if f.Name() != "f5-tts" || f.Tier() != TierSelfHosted || f.cfg.MaxChars != 5000 {
		t.Errorf("Name, Tier, MaxChars = %q, %q, %d", f.Name(), f.Tier(), f.cfg.MaxChars)
	}
}

// A float32 whose first three little-endian bytes are "END": about 0.767, a plausible sample,
// which must not be taken for the end marker.
var ttsENDLookalike = math.Float32frombits(binary.LittleEndian.Uint32([]byte("END?")))

func TestTTSF5SocketConversion(t *testing.T) {
	samples := []float32{0, 0.5, -0.5, 1, -1, 1.5, -1.5, 0.25, float32(math.NaN()), float32(math.Inf(1)), ttsENDLookalike}
	want := []int16{0, 16384, -16384, 32767, -32767, 32767, -32767, 8192, 0, 32767, int16(math.Round(float64(ttsENDLookalike) * 32767))}
	srv := ttsStartF5Server(t, func(conn net.Conn, text string, _ int) {
		raw := append(ttsFloats(samples...), "END"...)
		// Odd-sized writes, so samples arrive split across reads when the network allows.
		for len(raw) > 0 {
			n := min(len(raw), 5)
			if _, err := conn.Write(raw[:n]); err != nil {
				return
			}
			raw = raw[n:]
		}
	})
	f := ttsNewF5(t, F5TTSConfig{Addr: srv.Addr(), Voice: "reference"})
	s, err := f.Synthesize(t.Context(), SpeechRequest{Text: "Bonjour, ça va?", Format: FormatMP3, Voice: "alloy", Speed: 1.3})
	if err != nil {
		t.Fatalf("Synthesize: %v", err)
	}
	got := ttsPCM16(ttsReadAll(t, s))
	if !slices.Equal(got, want) {
		t.Errorf("samples = %v; want %v", got, want)
	}
	if texts := srv.Texts(); !slices.Equal(texts, []string{"Bonjour, ça va?"}) {
		t.Errorf("server got %q", texts)
	}
	if s.Format != FormatPCM16 || s.SampleRate != 24000 || s.ContentType != "audio/pcm; rate=24000" ||
		s.Provider != "f5-tts" || s.Model != "f5-tts" || s.Voice != "reference" {
		t.Errorf("speech = %+v; want pcm16 at 24000 whatever was asked", s)
	}
}

// TestTTSF5SocketENDSplit holds the last byte of "END" back until the test has read all the
// audio the client can already be sure of: every sample but the last, which could still be the
// start of the marker as far as the client knows.
func TestTTSF5SocketENDSplit(t *testing.T) {
	samples := []float32{0.1, 0.2, 0.3, ttsENDLookalike}
	gate := make(chan struct{})
	srv := ttsStartF5Server(t, func(conn net.Conn, _ string, _ int) {
		if _, err := conn.Write(append(ttsFloats(samples...), "EN"...)); err != nil {
			return
		}
		<-gate
		_, _ = conn.Write([]byte("D"))
	})
	f := ttsNewF5(t, F5TTSConfig{Addr: srv.Addr()})
	s, err := f.Synthesize(t.Context(), SpeechRequest{Text: "split"})
	if err != nil {
		t.Fatalf("Synthesize: %v", err)
	}
	defer s.Audio.Close()
	head := make([]byte, 2*(len(samples)-1))
	if _, err := io.ReadFull(s.Audio, head); err != nil {
		close(gate)
		t.Fatalf("reading the samples sent before the marker: %v", err)
	}
	close(gate)
	tail, err := io.ReadAll(s.Audio)
	if err != nil {
		t.Fatalf("reading the end: %v", err)
	}
	want := []int16{3277, 6553, 9830, int16(math.Round(float64(ttsENDLookalike) * 32767))}
	if got := ttsPCM16(append(head, tail...)); !slices.Equal(got, want) {
		t.Errorf("samples = %v; want %v", got, want)
	}
}

func TestTTSF5SocketBrokenAnswers(t *testing.T) {
	tests := []struct {
		name   string
		answer []byte
		early  bool   // the error comes from Synthesize rather than from reading
		want   string // in the error message
	}{
		{"closed without audio", nil, true, "without sending audio"},
		{"no END", ttsFloats(0.1, 0.2), false, "without the END marker"},
		{"truncated sample before END", append(ttsFloats(0.1), 0x00, 0x00, 'E', 'N', 'D'), false, "without the END marker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := ttsStartF5Server(t, func(conn net.Conn, _ string, _ int) { _, _ = conn.Write(tt.answer) })
			f := ttsNewF5(t, F5TTSConfig{Addr: srv.Addr()})
			s, err := f.Synthesize(t.Context(), SpeechRequest{Text: "hello"})
			if !tt.early {
				if err != nil {
					t.Fatalf("Synthesize: %v", err)
				}
				defer s.Audio.Close()
				_, err = io.ReadAll(s.Audio)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want one saying %q", err, tt.want)
			}
			if pe := ttsAsProviderError(t, err); pe.Provider != "f5-tts" || !pe.Retryable() {
				t.Errorf("error = %+v; want a retryable f5-tts failure", pe)
			}
		})
	}
}

func TestTTSF5SocketUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more
	f := ttsNewF5(t, F5TTSConfig{Addr: addr})
	_, err = f.Synthesize(t.Context(), SpeechRequest{Text: "hello"})
	pe := ttsAsProviderError(t, err)
	if pe.Status != 0 || !pe.Retryable() || !strings.Contains(err.Error(), "connecting") {
		t.Errorf("error = %v; want a retryable connection failure", err)
	}
}

// TestTTSF5SocketLongText checks that text over the server's 1024-byte read is sent as several
// requests, cut between words, whose audio follows in order.
func TestTTSF5SocketLongText(t *testing.T) {
	var words []string
	for i := range 300 {
		words = append(words, []string{"alpha", "beta", "gamma", "délta"}[i%4])
	}
	text := strings.Join(words, " ") + "." // about 1,850 bytes
	srv := ttsStartF5Server(t, func(conn net.Conn, _ string, n int) {
		_, _ = conn.Write(append(ttsFloats(float32(n+1)/10, float32(n+1)/10), "END"...))
	})
	f := ttsNewF5(t, F5TTSConfig{Addr: srv.Addr()})
	s, err := f.Synthesize(t.Context(), SpeechRequest{Text: text})
	if err != nil {
		t.Fatalf("Synthesize: %v", err)
	}
	got := ttsPCM16(ttsReadAll(t, s))
	texts := srv.Texts()
	if len(texts) < 2 {
		t.Fatalf("server got %d requests; want the text split", len(texts))
	}
	var want []int16
	for i, piece := range texts {
		if len(piece) > 1024 {
			t.Errorf("piece %d is %d bytes; the server reads at most 1024", i, len(piece))
		}
		if strings.HasPrefix(piece, " ") || strings.HasSuffix(piece, " ") {
			t.Errorf("piece %d is cut inside a word or untrimmed: %q…", i, piece[:20])
		}
		v := int16(math.Round(float64(float32(i+1)/10) * 32767))
		want = append(want, v, v)
	}
	if strings.Join(texts, " ") != text {
		t.Error("the pieces do not add up to the text")
	}
	if !slices.Equal(got, want) {
		t.Errorf("samples = %v; want %v", got, want)
	}
}

// TestTTSF5SocketCancel checks that cancelling ctx ends a stream the server has stalled.
func TestTTSF5SocketCancel(t *testing.T) {
	release := make(chan struct{})
	srv := ttsStartF5Server(t, func(conn net.Conn, _ string, _ int) {
		if _, err := conn.Write(ttsFloats(0.5, 0.5, 0.5)); err != nil {
			return
		}
		<-release
	})
	defer close(release)
	f := ttsNewF5(t, F5TTSConfig{Addr: srv.Addr()})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s, err := f.Synthesize(ctx, SpeechRequest{Text: "stall"})
	if err != nil {
		t.Fatalf("Synthesize: %v", err)
	}
	defer s.Audio.Close()
	// Two samples are certain (the third could be the start of "END").
	if _, err := io.ReadFull(s.Audio, make([]byte, 4)); err != nil {
		t.Fatalf("first samples: %v", err)
	}
	cancel()
	if _, err := io.ReadAll(s.Audio); !errors.Is(err, context.Canceled) {
		t.Fatalf("reading after cancel: %v; want context.Canceled", err)
	}
}

// TestTTSF5SocketCloseEarly checks that closing Audio before the end hangs up on the server.
func TestTTSF5SocketCloseEarly(t *testing.T) {
	hungUp := make(chan struct{})
	srv := ttsStartF5Server(t, func(conn net.Conn, _ string, _ int) {
		defer close(hungUp)
		chunk := ttsFloats(make([]float32, 2048)...)
		for {
			// Keeps streaming until the client is gone, as the real server would.
			if _, err := conn.Write(chunk); err != nil {
				return
			}
		}
	})
	f := ttsNewF5(t, F5TTSConfig{Addr: srv.Addr()})
	s, err := f.Synthesize(t.Context(), SpeechRequest{Text: "endless"})
	if err != nil {
		t.Fatalf("Synthesize: %v", err)
	}
	if _, err := io.ReadFull(s.Audio, make([]byte, 1000)); err != nil {
		t.Fatalf("first audio: %v", err)
	}
	if err := s.Audio.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-hungUp:
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not hang up after Audio was closed")
	}
}

// TestTTSF5HTTP checks the OpenAI-compatible mode: BaseURL + "/audio/speech", the wrapper's
// defaults left to it when none are configured.
func TestTTSF5HTTP(t *testing.T) {
	srv, reqs := ttsAudioServer(t, "audio/wav", [][]byte{[]byte("RIFF....WAVE")}, nil)
	f := ttsNewF5(t, F5TTSConfig{BaseURL: srv.URL + "/v1", HTTPClient: srv.Client()})
	s, err := f.Synthesize(t.Context(), SpeechRequest{Text: "Self hosted.", Format: FormatWAV, Speed: 0.8})
	if err != nil {
		t.Fatalf("Synthesize: %v", err)
	}
	if got := ttsReadAll(t, s); string(got) != "RIFF....WAVE" {
		t.Errorf("audio = %q", got)
	}
	r := ttsNextRequest(t, reqs)
	if r.Method != "POST" || r.Path != "/v1/audio/speech" || r.Header.Get("Authorization") != "" {
		t.Errorf("request %s %s, Authorization %q", r.Method, r.Path, r.Header.Get("Authorization"))
	}
	body := r.JSON(t)
	if body["input"] != "Self hosted." || body["response_format"] != "wav" || body["speed"] != 0.8 {
		t.Errorf("body = %v", body)
	}
	if _, ok := body["model"]; ok {
		t.Errorf("model sent without one configured: %v", body)
	}
	if _, ok := body["voice"]; ok {
		t.Errorf("voice sent without one configured: %v", body)
	}
	if s.Provider != "f5-tts" || s.Model != "f5-tts" || s.Format != FormatWAV {
		t.Errorf("speech = %+v", s)
	}

	f = ttsNewF5(t, F5TTSConfig{BaseURL: srv.URL + "/v1", APIKey: "f5key", Voice: "Emilia", HTTPClient: srv.Client()})
	s, err = f.Synthesize(t.Context(), SpeechRequest{Text: "Again.", Format: FormatPCM16})
	if err != nil {
		t.Fatalf("Synthesize: %v", err)
	}
	ttsReadAll(t, s)
	r = ttsNextRequest(t, reqs)
	body = r.JSON(t)
	if r.Header.Get("Authorization") != "Bearer f5key" || body["voice"] != "Emilia" || body["response_format"] != "pcm" {
		t.Errorf("Authorization %q, body %v", r.Header.Get("Authorization"), body)
	}
	if s.SampleRate != 24000 || s.Format != FormatPCM16 || s.Voice != "Emilia" {
		t.Errorf("speech = %+v", s)
	}
}

func TestTTSF5HTTPError(t *testing.T) {
	srv := ttsErrorServer(t, 401, nil, `{"error":"Invalid API key"}`)
	f := ttsNewF5(t, F5TTSConfig{BaseURL: srv.URL + "/v1", HTTPClient: srv.Client()})
	_, err := f.Synthesize(t.Context(), SpeechRequest{Text: "Hi."})
	pe := ttsAsProviderError(t, err)
	if pe.Provider != "f5-tts" || pe.Status != 401 || pe.Message != "Invalid API key" {
		t.Errorf("error = %+v", pe)
	}
}

func TestTTSSplitText(t *testing.T) {
	tests := []struct {
		name string
		text string
		max  int
		want []string
	}{
		{"short", "  hello world  ", 20, []string{"hello world"}},
		{"sentence", "One two. Three four five.", 16, []string{"One two.", "Three four five."}},
		{"words", "aaa bbb ccc ddd", 8, []string{"aaa bbb", "ccc ddd"}},
		{"space just past the limit", "aaaa bbbb", 4, []string{"aaaa", "bbbb"}},
		{"one long word, cut between characters", "ééééé", 4, []string{"éé", "éé", "é"}},
		{"blank", "   ", 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ttsSplitText(tt.text, tt.max)
			if !slices.Equal(got, tt.want) {
				t.Errorf("ttsSplitText(%q, %d) = %q; want %q", tt.text, tt.max, got, tt.want)
			}
			for _, p := range got {
				if len(p) > tt.max {
					t.Errorf("piece %q is over %d bytes", p, tt.max)
				}
			}
		})
	}
}
