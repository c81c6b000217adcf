package voice

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Local engine names, for LocalTTSConfig.Engine and Speech.Model.
const (
	LocalEngineFlite  = "flite"
	LocalEngineEspeak = "espeak-ng"
)

// ErrTTSEngineMissing is returned by LocalTTS when its speech engine is not installed; such
// errors also match ErrUnsupported, so the router skips the local tier. The message names the
// Debian package to install.
var ErrTTSEngineMissing = errors.New("voice: speech engine not installed")

// espeak-ng's default rate is 175 words per minute; it accepts 80 to 450.
const (
	ttsEspeakWPM    = 175
	ttsEspeakMinWPM = 80
	ttsEspeakMaxWPM = 450
)

// ttsLocalVoiceName is what a voice name may look like: a plain name, an espeak-ng language
// ("en-us") or variant ("en-us+f3"). It keeps out paths and URLs, which flite would load as
// voice files ("-voice NAME (NAME can be pathname/url to flitevox file)"), and leading dashes.
var ttsLocalVoiceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_+-]{0,63}$`)

// LocalTTSConfig configures the local engines.
type LocalTTSConfig struct {
	// Name reported as the provider; Name + "/" + engine is the price key. Default "local".
	Name string
	// Engine is LocalEngineFlite, LocalEngineEspeak or "" for automatic: flite when it is
	// installed, since pocketsphinx (the local STT) recognises its kal16 voice and not
	// espeak-ng's, else espeak-ng. Decided at each call, so installing a package later works.
	Engine string
	// FlitePath is the flite program, a name looked up in PATH or a path. Default "flite"
	// (Debian package flite).
	FlitePath string
	// EspeakPath is the espeak-ng program. Default "espeak-ng" (Debian package espeak-ng).
	EspeakPath string
	// FliteVoice is flite's voice when the request names none. Default "kal16" (16 kHz; the
	// other built-in voices, kal awb rms slt, are 8 or 16 kHz).
	FliteVoice string
	// EspeakVoice is espeak-ng's voice when the request names none. Default "en" (22.05 kHz).
	EspeakVoice string
	// MaxChars refuses longer texts with ErrTextTooLong. Default 5000.
	MaxChars int
	// TempDir is where each call makes (and removes) its scratch directory for the engine's WAV
	// output. Default os.TempDir().
	TempDir string
	// MaxConcurrent bounds the engine processes running at once; further calls wait their
	// turn (or for their context). Default runtime.NumCPU(): the engines are CPU-bound, and a
	// burst of sentences must not fork a process each.
	MaxConcurrent int
}

// LocalTTS speaks through flite or espeak-ng on the server: demo quality, $0, no network. It
// runs the engine once per request, with the text on its standard input (never on the command
// line, so text that starts with "-" is spoken, not parsed as an option, and the text is never
// written to disk), and returns the whole WAV: Format FormatWAV, mono PCM16 at the engine's
// native rate (flite kal16 16 kHz, espeak-ng 22.05 kHz). The voice's format is returned
// whatever the request's Format says; converting is the router's job. It is safe for concurrent
// use.
type LocalTTS struct {
	cfg LocalTTSConfig

	sem chan struct{} // one token per running engine process

	mu          sync.Mutex
	fliteVoices map[string][]string // flite path -> its built-in voices, from flite -lv
}

var _ TTS = (*LocalTTS)(nil)

// NewLocalTTS builds the provider; it fails only for an unknown Engine or a default voice that
// is not a plain voice name.
func NewLocalTTS(cfg LocalTTSConfig) (*LocalTTS, error) {
	if cfg.Name == "" {
		cfg.Name = "local"
	}
	switch cfg.Engine {
	case "", LocalEngineFlite, LocalEngineEspeak:
	default:
		return nil, fmt.Errorf("%s tts: engine %q: want %q, %q or empty for automatic", cfg.Name, cfg.Engine, LocalEngineFlite, LocalEngineEspeak)
	}
	if cfg.FlitePath == "" {
		cfg.FlitePath = "flite"
	}
	if cfg.EspeakPath == "" {
		cfg.EspeakPath = "espeak-ng"
	}
	if cfg.FliteVoice == "" {
		cfg.FliteVoice = "kal16"
	}
	if cfg.EspeakVoice == "" {
		cfg.EspeakVoice = "en"
	}
	for _, v := range []string{cfg.FliteVoice, cfg.EspeakVoice} {
		if !ttsLocalVoiceName.MatchString(v) {
			return nil, fmt.Errorf("%s tts: default voice %q is not a voice name", cfg.Name, v)
		}
	}
	if cfg.MaxChars == 0 {
		cfg.MaxChars = 5000
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = runtime.NumCPU()
	}
	return &LocalTTS{cfg: cfg, sem: make(chan struct{}, cfg.MaxConcurrent), fliteVoices: make(map[string][]string)}, nil
}

// Name implements TTS.
func (l *LocalTTS) Name() string { return l.cfg.Name }

// Tier implements TTS.
func (l *LocalTTS) Tier() Tier { return TierLocal }

// Check reports whether the engine Synthesize would use is installed, so the router can leave
// the tier out at startup; the error matches ErrTTSEngineMissing and ErrUnsupported.
func (l *LocalTTS) Check() error {
	_, _, err := l.engine()
	return err
}

// engine resolves the configured engine to a program path.
func (l *LocalTTS) engine() (engine, path string, err error) {
	switch l.cfg.Engine {
	case LocalEngineFlite:
		path, err = exec.LookPath(l.cfg.FlitePath)
		if err != nil {
			return "", "", fmt.Errorf("%s tts: %w: flite (%s): %w; install the Debian package flite (%w)", l.cfg.Name, ErrTTSEngineMissing, l.cfg.FlitePath, err, ErrUnsupported)
		}
		return LocalEngineFlite, path, nil
	case LocalEngineEspeak:
		path, err = exec.LookPath(l.cfg.EspeakPath)
		if err != nil {
			return "", "", fmt.Errorf("%s tts: %w: espeak-ng (%s): %w; install the Debian package espeak-ng (%w)", l.cfg.Name, ErrTTSEngineMissing, l.cfg.EspeakPath, err, ErrUnsupported)
		}
		return LocalEngineEspeak, path, nil
	}
	if path, err := exec.LookPath(l.cfg.FlitePath); err == nil {
		return LocalEngineFlite, path, nil
	}
	if path, err := exec.LookPath(l.cfg.EspeakPath); err == nil {
		return LocalEngineEspeak, path, nil
	}
	return "", "", fmt.Errorf("%s tts: %w: neither flite (%s) nor espeak-ng (%s) was found; install the Debian package flite or espeak-ng (%w)",
		l.cfg.Name, ErrTTSEngineMissing, l.cfg.FlitePath, l.cfg.EspeakPath, ErrUnsupported)
}

// Synthesize implements TTS. A voice the engine does not have is an error matching
// ErrUnsupported; Speed maps to espeak-ng's words per minute (175 × Speed, within 80–450) or
// to flite's duration_stretch (1 / Speed, Speed within 0.25–4).
func (l *LocalTTS) Synthesize(ctx context.Context, req SpeechRequest) (*Speech, error) {
	name := l.cfg.Name
	if err := ttsCheckText(name, req.Text, l.cfg.MaxChars); err != nil {
		return nil, err
	}
	speed, err := ttsSpeed(name, req.Speed, 0.25, 4)
	if err != nil {
		return nil, err
	}
	engine, path, err := l.engine()
	if err != nil {
		return nil, err
	}
	voice := req.Voice
	if voice == "" {
		voice = l.cfg.FliteVoice
		if engine == LocalEngineEspeak {
			voice = l.cfg.EspeakVoice
		}
	}
	if !ttsLocalVoiceName.MatchString(voice) {
		return nil, fmt.Errorf("%s tts: %s: voice %q is not a voice name: %w", name, engine, voice, ErrUnsupported)
	}
	if engine == LocalEngineFlite {
		// flite speaks an unknown voice name in its default voice without a word of warning,
		// so the name is checked against the voices it lists.
		voices, err := l.fliteVoiceList(ctx, path)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(voices, voice) {
			return nil, fmt.Errorf("%s tts: flite has no voice %q (it has %s): %w", name, voice, strings.Join(voices, ", "), ErrUnsupported)
		}
	}

	select {
	case l.sem <- struct{}{}:
		defer func() { <-l.sem }()
	case <-ctx.Done():
		return nil, providerContextErr(ctx, name, "tts")
	}
	dir, err := os.MkdirTemp(l.cfg.TempDir, "dartmouth-tts-")
	if err != nil {
		return nil, fmt.Errorf("%s tts: scratch directory: %w", name, err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "speech.wav")

	var args []string
	if engine == LocalEngineFlite {
		args = []string{"-voice", voice}
		if speed != 1 {
			args = append(args, "--setf", "duration_stretch="+strconv.FormatFloat(1/speed, 'f', 3, 64))
		}
		// /dev/stdin rather than -t TEXT: the text stays off the command line (where a
		// leading "-" would be an option and other users could read it in ps) and off disk.
		args = append(args, "-f", "/dev/stdin", "-o", out)
	} else {
		wpm := int(math.Round(ttsEspeakWPM * speed))
		wpm = min(max(wpm, ttsEspeakMinWPM), ttsEspeakMaxWPM)
		args = []string{"-v", voice, "-s", strconv.Itoa(wpm), "-b", "1", "-w", out, "--stdin"}
	}
	var output ttsLimitedBuffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = strings.NewReader(req.Text)
	cmd.Stdout = &output
	cmd.Stderr = &output
	cmd.Dir = dir
	// The engines start no children, but if one ever held our pipes open after being killed,
	// Wait would hang; this bounds it.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		if ctxErr := providerContextErr(ctx, name, "tts"); ctxErr != nil {
			return nil, ctxErr
		}
		msg := strings.TrimSpace(output.String())
		if engine == LocalEngineEspeak && strings.Contains(msg, "voice does not exist") {
			return nil, fmt.Errorf("%s tts: espeak-ng has no voice %q: %w", name, voice, ErrUnsupported)
		}
		return nil, fmt.Errorf("%s tts: %s failed: %w: %s", name, engine, err, msg)
	}
	wav, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("%s tts: %s wrote no audio: %w", name, engine, err)
	}
	if len(wav) < 44 || string(wav[:4]) != "RIFF" || string(wav[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%s tts: %s wrote %d bytes that are not a WAV file", name, engine, len(wav))
	}
	return &Speech{
		Audio:       io.NopCloser(bytes.NewReader(wav)),
		Format:      FormatWAV,
		ContentType: ttsContentType(FormatWAV, 0),
		Provider:    name,
		Model:       engine,
		Voice:       voice,
	}, nil
}

// fliteVoiceList returns the voices built into the flite at path, asking it once.
func (l *LocalTTS) fliteVoiceList(ctx context.Context, path string) ([]string, error) {
	l.mu.Lock()
	voices, ok := l.fliteVoices[path]
	l.mu.Unlock()
	if ok {
		return voices, nil
	}
	var output ttsLimitedBuffer
	cmd := exec.CommandContext(ctx, path, "-lv")
	cmd.Stdout = &output
	cmd.Stderr = &output
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		if ctxErr := providerContextErr(ctx, l.cfg.Name, "tts"); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, fmt.Errorf("%s tts: flite -lv failed: %w: %s", l.cfg.Name, err, strings.TrimSpace(output.String()))
	}
	// "Voices available: kal awb_time kal16 awb rms slt "
	_, list, found := strings.Cut(output.String(), ":")
	voices = strings.Fields(list)
	if !found || len(voices) == 0 {
		return nil, fmt.Errorf("%s tts: flite -lv listed no voices: %q", l.cfg.Name, providerSnippet(output.Bytes()))
	}
	l.mu.Lock()
	l.fliteVoices[path] = voices
	l.mu.Unlock()
	return voices, nil
}

// ttsLimitedBuffer keeps the first 4 KiB written to it: enough of an engine's messages for an
// error, without letting a chatty engine grow memory.
type ttsLimitedBuffer struct {
	bytes.Buffer
}

func (b *ttsLimitedBuffer) Write(p []byte) (int, error) {
	const limit = 4 << 10
	if room := limit - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
