package voice

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The local engines are real programs: these tests need the Debian packages flite and
// espeak-ng, and fail (not skip) without them.

const ttsSentence = "Remind me to call mom at five pm."

// ttsLocalEngines are the engines under test with the WAV rate each produces.
var ttsLocalEngines = []struct {
	engine string
	rate   int
	voice  string
}{
	{LocalEngineFlite, 16000, "kal16"},
	{LocalEngineEspeak, 22050, "en"},
}

func ttsNewLocal(t *testing.T, cfg LocalTTSConfig) *LocalTTS {
	t.Helper()
	l, err := NewLocalTTS(cfg)
	if err != nil {
		t.Fatalf("NewLocalTTS: %v", err)
	}
	return l
}

// ttsSpeak synthesizes text and returns the parsed WAV.
func ttsSpeak(t *testing.T, l *LocalTTS, req SpeechRequest) (*Speech, ttsWAV) {
	t.Helper()
	s, err := l.Synthesize(t.Context(), req)
	if err != nil {
		t.Fatalf("Synthesize(%q): %v", req.Text, err)
	}
	return s, ttsParseWAV(t, ttsReadAll(t, s))
}

func TestTTSLocalEngines(t *testing.T) {
	ttsRequireBinary(t, "flite", "flite")
	ttsRequireBinary(t, "espeak-ng", "espeak-ng")
	for _, e := range ttsLocalEngines {
		t.Run(e.engine, func(t *testing.T) {
			tmp := t.TempDir()
			l := ttsNewLocal(t, LocalTTSConfig{Engine: e.engine, TempDir: tmp})
			if l.Name() != "local" || l.Tier() != TierLocal || l.Check() != nil {
				t.Errorf("Name, Tier, Check = %q, %q, %v", l.Name(), l.Tier(), l.Check())
			}
			s, wav := ttsSpeak(t, l, SpeechRequest{Text: ttsSentence, Format: FormatMP3})
			if wav.Format != 1 || wav.Channels != 1 || wav.Bits != 16 || wav.SampleRate != e.rate {
				t.Errorf("WAV %+v; want PCM16 mono at %d Hz", wav, e.rate)
			}
			if d := wav.Duration(); d < 1*time.Second || d > 6*time.Second {
				t.Errorf("duration %v; want a plausible 1-6 s for %q", d, ttsSentence)
			}
			if s.Format != FormatWAV || s.ContentType != "audio/wav" || s.SampleRate != 0 ||
				s.Provider != "local" || s.Model != e.engine || s.Voice != e.voice {
				t.Errorf("speech = %+v; want the engine's native WAV whatever was asked", s)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("scratch files left behind: %v", left)
			}
		})
	}
}

// TestTTSLocalDashText checks that text that looks like options is spoken: were it parsed, it
// would write pwned.wav or fail.
func TestTTSLocalDashText(t *testing.T) {
	ttsRequireBinary(t, "flite", "flite")
	ttsRequireBinary(t, "espeak-ng", "espeak-ng")
	for _, e := range ttsLocalEngines {
		t.Run(e.engine, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "pwned.wav")
			text := "-w " + target + " -o " + target + " --help -v xx hello"
			l := ttsNewLocal(t, LocalTTSConfig{Engine: e.engine})
			_, wav := ttsSpeak(t, l, SpeechRequest{Text: text})
			if d := wav.Duration(); d < time.Second {
				t.Errorf("duration %v; %q was not spoken", d, text)
			}
			if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the text was taken for options: %s exists", target)
			}
			_, short := ttsSpeak(t, l, SpeechRequest{Text: "-hello"})
			if d := short.Duration(); d < 300*time.Millisecond {
				t.Errorf("\"-hello\" lasted only %v", d)
			}
		})
	}
}

func TestTTSLocalSpeed(t *testing.T) {
	ttsRequireBinary(t, "flite", "flite")
	ttsRequireBinary(t, "espeak-ng", "espeak-ng")
	for _, e := range ttsLocalEngines {
		t.Run(e.engine, func(t *testing.T) {
			l := ttsNewLocal(t, LocalTTSConfig{Engine: e.engine})
			var durations []time.Duration
			for _, speed := range []float64{0.5, 1, 2} {
				_, wav := ttsSpeak(t, l, SpeechRequest{Text: ttsSentence, Speed: speed})
				durations = append(durations, wav.Duration())
			}
			if !(durations[0] > durations[1]*3/2 && durations[1] > durations[2]*3/2) {
				t.Errorf("durations at speed 0.5, 1, 2 = %v; want each clearly longer than the next", durations)
			}
		})
	}
}

func TestTTSLocalAutomatic(t *testing.T) {
	ttsRequireBinary(t, "flite", "flite")
	ttsRequireBinary(t, "espeak-ng", "espeak-ng")
	s, wav := ttsSpeak(t, ttsNewLocal(t, LocalTTSConfig{}), SpeechRequest{Text: "hello"})
	if s.Model != LocalEngineFlite || s.Voice != "kal16" || wav.SampleRate != 16000 {
		t.Errorf("automatic with both installed: %s/%s at %d Hz; want flite/kal16 at 16000", s.Model, s.Voice, wav.SampleRate)
	}
	l := ttsNewLocal(t, LocalTTSConfig{FlitePath: "/nonexistent/flite"})
	s, wav = ttsSpeak(t, l, SpeechRequest{Text: "hello"})
	if s.Model != LocalEngineEspeak || s.Voice != "en" || wav.SampleRate != 22050 {
		t.Errorf("automatic without flite: %s/%s at %d Hz; want espeak-ng/en at 22050", s.Model, s.Voice, wav.SampleRate)
	}
}

func TestTTSLocalMissingEngine(t *testing.T) {
	tests := []struct {
		name string
		cfg  LocalTTSConfig
		want []string // in the message
	}{
		{"flite", LocalTTSConfig{Engine: LocalEngineFlite, FlitePath: "/nonexistent/flite"}, []string{"/nonexistent/flite", "Debian package flite"}},
		{"espeak-ng", LocalTTSConfig{Engine: LocalEngineEspeak, EspeakPath: "/nonexistent/espeak-ng"}, []string{"/nonexistent/espeak-ng", "Debian package espeak-ng"}},
		{"automatic", LocalTTSConfig{FlitePath: "/nonexistent/flite", EspeakPath: "no-such-espeak-ng-in-path"}, []string{"neither flite", "no-such-espeak-ng-in-path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := ttsNewLocal(t, tt.cfg)
			_, err := l.Synthesize(t.Context(), SpeechRequest{Text: "hello"})
			for _, got := range []error{err, l.Check()} {
				if !errors.Is(got, ErrTTSEngineMissing) || !errors.Is(got, ErrUnsupported) {
					t.Fatalf("err = %v; want ErrTTSEngineMissing and ErrUnsupported", got)
				}
				for _, w := range tt.want {
					if !strings.Contains(got.Error(), w) {
						t.Errorf("error %q does not mention %q", got, w)
					}
				}
			}
		})
	}
}

func TestTTSLocalVoices(t *testing.T) {
	ttsRequireBinary(t, "flite", "flite")
	ttsRequireBinary(t, "espeak-ng", "espeak-ng")
	flite := ttsNewLocal(t, LocalTTSConfig{Engine: LocalEngineFlite})
	espeak := ttsNewLocal(t, LocalTTSConfig{Engine: LocalEngineEspeak})

	s, wav := ttsSpeak(t, flite, SpeechRequest{Text: "hello", Voice: "slt"})
	if s.Voice != "slt" || wav.DataBytes == 0 {
		t.Errorf("flite slt: %+v", s)
	}
	s, _ = ttsSpeak(t, espeak, SpeechRequest{Text: "hello", Voice: "en-us+f3"})
	if s.Voice != "en-us+f3" {
		t.Errorf("espeak-ng en-us+f3: %+v", s)
	}

	tests := []struct {
		name  string
		l     *LocalTTS
		voice string
	}{
		{"flite unknown", flite, "alloy"},
		{"espeak-ng unknown", espeak, "nosuchvoice"},
		{"flite voice file path", flite, "/usr/share/flite/voice.flitevox"},
		{"flite voice URL", flite, "http://example.com/x.flitevox"},
		{"espeak-ng path", espeak, "../../etc/passwd"},
		{"option", espeak, "-q"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.l.Synthesize(t.Context(), SpeechRequest{Text: "hello", Voice: tt.voice})
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tt.voice) {
				t.Errorf("voice %q: err = %v; want ErrUnsupported naming the voice", tt.voice, err)
			}
		})
	}
}

func TestTTSLocalBadInput(t *testing.T) {
	ttsRequireBinary(t, "flite", "flite")
	l := ttsNewLocal(t, LocalTTSConfig{MaxChars: 10})
	tests := []struct {
		name string
		req  SpeechRequest
		want error
	}{
		{"empty", SpeechRequest{}, ErrEmptyText},
		{"blank", SpeechRequest{Text: "  \n"}, ErrEmptyText},
		{"too long", SpeechRequest{Text: "more than ten"}, ErrTextTooLong},
		{"negative speed", SpeechRequest{Text: "hi", Speed: -1}, nil},
		{"invalid UTF-8", SpeechRequest{Text: "\xc3\x28"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.Synthesize(t.Context(), tt.req)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("err = %v; want %v", err, tt.want)
			}
		})
	}
	if _, err := NewLocalTTS(LocalTTSConfig{Engine: "festival"}); err == nil {
		t.Error("unknown engine accepted")
	}
	if _, err := NewLocalTTS(LocalTTSConfig{FliteVoice: "/tmp/x.flitevox"}); err == nil {
		t.Error("a voice file path accepted as the default voice")
	}
}

func TestTTSLocalCanceled(t *testing.T) {
	ttsRequireBinary(t, "espeak-ng", "espeak-ng")
	l := ttsNewLocal(t, LocalTTSConfig{Engine: LocalEngineEspeak, MaxConcurrent: 1})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l.Synthesize(ctx, SpeechRequest{Text: "hello"}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v; want context.Canceled", err)
	}

	// With the only engine slot taken, a call waits for its turn, and gives up with its context.
	l.sem <- struct{}{}
	defer func() { <-l.sem }()
	ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := l.Synthesize(ctx, SpeechRequest{Text: "hello"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting for a slot: err = %v; want context.DeadlineExceeded", err)
	}
}
