package voice

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/voice/audio"
)

const sttPhrase = "remind me to call mom at five pm"

// sttGrammar allows the test phrase among a few others, so a grammar run has to pick it.
const sttGrammar = `#JSGF V1.0;
grammar reminders;
public <command> = remind me to call (mom | dad) at (five | six) (am | pm) | what time is it | cancel;
`

// sttRequireTools fails (never skips: CI must have them) when a tool the local tests drive is
// missing, naming the Debian package to install.
func sttRequireTools(t *testing.T) {
	t.Helper()
	for tool, pkg := range map[string]string{
		"pocketsphinx_continuous": "pocketsphinx pocketsphinx-en-us",
		"flite":                   "flite",
		"espeak-ng":               "espeak-ng",
	} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: apt-get install -y %s", tool, pkg)
		}
	}
	if _, err := os.Stat("/usr/share/pocketsphinx/model/en-us/en-us/mdef"); err != nil {
		t.Fatalf("pocketsphinx's US English model is not installed: apt-get install -y pocketsphinx-en-us (%v)", err)
	}
}

// sttSynth runs a speech synthesizer that writes a WAV file and returns the file.
func sttSynth(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "speech.wav")
	cmd := exec.CommandContext(t.Context(), name, append(args, out)...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", name, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sttFlite(t *testing.T, text string) []byte {
	return sttSynth(t, "flite", "-voice", "kal16", "-t", text, "-o")
}

func sttEspeak(t *testing.T, text string) []byte {
	return sttSynth(t, "espeak-ng", text, "-w")
}

func sttDecode(t *testing.T, b []byte) audio.PCM {
	t.Helper()
	p, err := audio.Decode(b, FormatWAV, 0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSTTLocalTranscribe(t *testing.T) {
	sttRequireTools(t)
	grammar := filepath.Join(t.TempDir(), "reminders.gram")
	if err := os.WriteFile(grammar, []byte(sttGrammar), 0o600); err != nil {
		t.Fatal(err)
	}
	flite := sttFlite(t, sttPhrase)
	flitePCM := sttDecode(t, flite)
	espeak := sttEspeak(t, sttPhrase)
	espeakPCM := sttDecode(t, espeak)
	if flitePCM.Rate != 16000 || espeakPCM.Rate != 22050 {
		t.Fatalf("synthesizers gave %d Hz (flite) and %d Hz (espeak-ng), the test expects 16000 and 22050", flitePCM.Rate, espeakPCM.Rate)
	}
	ulaw8k := audio.EncodeULaw(audio.Resample(flitePCM, 8000).Samples)
	pcm48k := audio.PCM16ToBytes(audio.Resample(flitePCM, 48000).Samples)

	cases := []struct {
		name      string
		cfg       LocalSTTConfig
		req       TranscribeRequest
		want      string
		wantDur   time.Duration
		wantModel string
	}{
		{
			name: "flite kal16 wav, default language model",
			req:  TranscribeRequest{Audio: flite, Format: FormatWAV, Language: "en-US"},
			want: sttPhrase, wantDur: flitePCM.Duration(), wantModel: "en-us",
		},
		{
			name: "flite as raw pcm16 at 48 kHz, default language model",
			req:  TranscribeRequest{Audio: pcm48k, Format: FormatPCM16, SampleRate: 48000},
			want: sttPhrase, wantDur: flitePCM.Duration(), wantModel: "en-us",
		},
		{
			name: "espeak-ng 22.05 kHz wav resampled, grammar",
			cfg:  LocalSTTConfig{Grammar: grammar},
			req:  TranscribeRequest{Audio: espeak, Format: FormatWAV},
			want: sttPhrase, wantDur: espeakPCM.Duration(), wantModel: "en-us-jsgf",
		},
		{
			name: "flite as 8 kHz G.711 µ-law, grammar",
			cfg:  LocalSTTConfig{Grammar: grammar},
			req:  TranscribeRequest{Audio: ulaw8k, Format: FormatULaw, SampleRate: 8000},
			want: sttPhrase, wantDur: flitePCM.Duration(), wantModel: "en-us-jsgf",
		},
		{
			name: "keyword list",
			cfg:  LocalSTTConfig{Keywords: []string{"call mom"}},
			req:  TranscribeRequest{Audio: flite, Format: FormatWAV},
			want: "call mom", wantDur: flitePCM.Duration(), wantModel: "en-us-kws",
		},
		{
			name: "silence",
			req:  TranscribeRequest{Audio: audio.EncodeWAV(audio.PCM{Samples: make([]int16, 8000), Rate: 16000}), Format: FormatWAV},
			want: "", wantDur: 500 * time.Millisecond, wantModel: "en-us",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			cfg := tc.cfg
			cfg.TempDir = tmp
			l, err := NewLocalSTT(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := l.Transcribe(t.Context(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			// 8 kHz µ-law holds fewer samples than 16 kHz: durations agree to a sample.
			if d := got.Duration - tc.wantDur; got.Text != tc.want || d < -time.Millisecond || d > time.Millisecond ||
				got.Provider != "pocketsphinx" || got.Model != tc.wantModel || got.Language != "en" {
				t.Fatalf("got %+v\nwant text %q duration %v model %s", *got, tc.want, tc.wantDur, tc.wantModel)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Fatalf("temporary files left behind: %v", left)
			}
		})
	}
}

func TestSTTLocalErrors(t *testing.T) {
	sttRequireTools(t)
	flite := sttFlite(t, "cancel")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	cases := []struct {
		name    string
		cfg     LocalSTTConfig
		ctx     context.Context
		req     TranscribeRequest
		wantIs  error
		wantMsg string
	}{
		{
			name:   "garbage input",
			req:    TranscribeRequest{Audio: []byte("this is not a wav file, just some text"), Format: FormatWAV},
			wantIs: audio.ErrUnsupportedFormat, wantMsg: "decode audio",
		},
		{
			name:   "unrecognisable input without a format",
			req:    TranscribeRequest{Audio: []byte{0x00, 0x13, 0x37, 0x42, 0x99, 0x01, 0x02, 0x03}},
			wantIs: audio.ErrUnsupportedFormat, wantMsg: "decode audio",
		},
		{
			name:   "format the audio package cannot decode goes to another tier",
			req:    TranscribeRequest{Audio: append([]byte("fLaC"), make([]byte, 64)...), Format: "flac"},
			wantIs: ErrUnsupported, wantMsg: "flac decoding is not supported",
		},
		{
			name:   "no audio",
			req:    TranscribeRequest{Format: FormatWAV},
			wantIs: audio.ErrEmpty,
		},
		{
			name:   "missing binary",
			cfg:    LocalSTTConfig{Binary: "/nonexistent/pocketsphinx_continuous"},
			req:    TranscribeRequest{Audio: flite, Format: FormatWAV},
			wantIs: ErrUnsupported, wantMsg: "install the Debian packages pocketsphinx and pocketsphinx-en-us",
		},
		{
			name:   "language the model does not speak",
			req:    TranscribeRequest{Audio: flite, Format: FormatWAV, Language: "fr"},
			wantIs: ErrUnsupported, wantMsg: `language "fr"`,
		},
		{
			name:    "grammar file missing",
			cfg:     LocalSTTConfig{Grammar: "/nonexistent/commands.gram"},
			req:     TranscribeRequest{Audio: flite, Format: FormatWAV},
			wantMsg: "Failed to open /nonexistent/commands.gram",
		},
		{
			name:    "acoustic model missing",
			cfg:     LocalSTTConfig{Args: []string{"-hmm", "/nonexistent/model"}},
			req:     TranscribeRequest{Audio: flite, Format: FormatWAV},
			wantMsg: "does not contain acoustic model definition",
		},
		{
			name:   "canceled",
			ctx:    canceled,
			req:    TranscribeRequest{Audio: flite, Format: FormatWAV},
			wantIs: context.Canceled,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			cfg := tc.cfg
			cfg.TempDir = tmp
			l, err := NewLocalSTT(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx := tc.ctx
			if ctx == nil {
				ctx = t.Context()
			}
			got, err := l.Transcribe(ctx, tc.req)
			if err == nil {
				t.Fatalf("no error; transcript %+v", got)
			}
			t.Logf("error: %v", err)
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("err = %v, want one wrapping %v", err, tc.wantIs)
			}
			if tc.wantMsg != "" && !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("err = %v, want one saying %q", err, tc.wantMsg)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Fatalf("temporary files left behind: %v", left)
			}
		})
	}
}

func TestSTTLocalCheck(t *testing.T) {
	sttRequireTools(t)
	ok, err := NewLocalSTT(LocalSTTConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ok.Check(); err != nil {
		t.Fatalf("Check with pocketsphinx installed: %v", err)
	}
	if ok.Name() != "pocketsphinx" || ok.Tier() != TierLocal {
		t.Fatalf("Name, Tier = %q, %q", ok.Name(), ok.Tier())
	}
	missing, err := NewLocalSTT(LocalSTTConfig{Binary: "no-such-pocketsphinx"})
	if err != nil {
		t.Fatal(err)
	}
	if err := missing.Check(); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "no-such-pocketsphinx not found") {
		t.Fatalf("Check = %v, want ErrUnsupported naming the binary", err)
	}
}

func TestSTTLocalConfig(t *testing.T) {
	cases := []struct {
		name    string
		cfg     LocalSTTConfig
		wantErr string
	}{
		{name: "defaults", cfg: LocalSTTConfig{}},
		{name: "grammar and keywords", cfg: LocalSTTConfig{Grammar: "g.gram", Keywords: []string{"hi"}}, wantErr: "at most one"},
		{name: "grammar and keyword file", cfg: LocalSTTConfig{Grammar: "g.gram", KeywordFile: "k.txt"}, wantErr: "at most one"},
		{name: "keyword with a newline", cfg: LocalSTTConfig{Keywords: []string{"call\nmom"}}, wantErr: "one non-empty line"},
		{name: "blank keyword", cfg: LocalSTTConfig{Keywords: []string{" "}}, wantErr: "one non-empty line"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewLocalSTT(tc.cfg)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestSTTPocketsphinxOutput(t *testing.T) {
	cases := []struct{ out, want string }{
		{"remind me to call mom at five pm\n", "remind me to call mom at five pm"},
		{"first part\n\nsecond part\n", "first part second part"},
		{"\n", ""},
		{"call mom  remind \n", "call mom remind"},
		{"000000000: hello world\n000000001: again\n", "hello world again"},
	}
	for _, tc := range cases {
		if got := sttPocketsphinxText([]byte(tc.out)); got != tc.want {
			t.Errorf("sttPocketsphinxText(%q) = %q, want %q", tc.out, got, tc.want)
		}
	}
	l, err := NewLocalSTT(LocalSTTConfig{Keywords: []string{"call mom", "five pm /1e-5/"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.keywordList(), "call mom /1e-20/\nfive pm /1e-5/\n"; got != want {
		t.Errorf("keywordList = %q, want %q", got, want)
	}
}
