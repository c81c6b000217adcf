package voice

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/dartmouth-gw/dartmouth/voice/audio"
)

// The acoustic model Debian's pocketsphinx-en-us ships is trained on 16 kHz audio, and
// pocketsphinx_continuous refuses a WAV at any other rate.
const sttPocketsphinxRate = 16000

// LocalSTTConfig configures pocketsphinx. With nothing set it runs Debian's
// pocketsphinx_continuous with the default US English language model.
type LocalSTTConfig struct {
	// Name reported as the provider. Default "pocketsphinx".
	Name string
	// Binary is the pocketsphinx_continuous executable, a path or a name looked up in PATH.
	// Default "pocketsphinx_continuous" (Debian packages pocketsphinx and pocketsphinx-en-us).
	Binary string
	// Grammar is a JSGF grammar file (-jsgf). Recognition is then restricted to the sentences
	// it allows, which makes every voice come out exact for a known command set, and takes
	// ~0.2 s instead of ~1 s. Default none: the open-vocabulary language model.
	Grammar string
	// KeywordFile is a keyword list file (-kws), one "phrase /threshold/" per line. Text is then
	// the phrases spotted, space-separated, in no meaningful order (this build prints the
	// latest first). Spotting depends on thresholds tuned per phrase and voice: on this
	// machine "call mom /1e-20/" is found in flite's voice but not in espeak-ng's, where a
	// grammar finds the whole sentence; prefer Grammar when the sentences are known. Default
	// none.
	KeywordFile string
	// Keywords are keyword phrases given inline, written to a keyword list for each call. A
	// phrase may carry its own threshold ("call mom /1e-20/"); otherwise KeywordThreshold is
	// used. Default none. At most one of Grammar, KeywordFile and Keywords may be set.
	Keywords []string
	// KeywordThreshold for Keywords without their own. Default 1e-20; longer phrases want
	// smaller values (down to 1e-40), shorter ones larger (1e-5) to avoid false alarms.
	KeywordThreshold float64
	// Args are extra command-line arguments, such as "-hmm DIR -dict FILE -lm FILE" for another
	// language's model. Default none.
	Args []string
	// Language the model recognises (ISO-639-1); requests hinting another language get
	// ErrUnsupported so the router can try a provider that speaks it. Default "en".
	Language string
	// TempDir holds the per-call WAV (and keyword list), removed when the call ends. Default
	// os.TempDir().
	TempDir string
	// MaxConcurrent bounds the decoder processes running at once; each loads the model and uses
	// a core for about a second. Callers beyond it wait (or give up when their context ends).
	// Default runtime.NumCPU().
	MaxConcurrent int
}

// LocalSTT transcribes on the server with CMU pocketsphinx, through its command-line tool: $0,
// no network, and demo quality. With the default language model it is exact on clear synthetic
// speech (flite's kal16 voice) but turns espeak-ng's "remind me to call mom at five pm" into "on
// the total opposite on you", and real voices, accents and noise fare no better; with a JSGF
// grammar it is dependable for a fixed command set (and ~5x faster); keyword spotting sits in
// between and needs its thresholds tuned. Each call runs one process, so calls
// are independent and safe to make concurrently. (A streaming decoder through cgo, fed frame by
// frame during the turn, is the planned successor.)
type LocalSTT struct {
	cfg LocalSTTConfig
	sem chan struct{}
}

var _ STT = (*LocalSTT)(nil)

// NewLocalSTT builds the provider. It fails for contradictory config, not for a missing
// pocketsphinx: a server without it still starts, and Transcribe (or Check) says what to install.
func NewLocalSTT(cfg LocalSTTConfig) (*LocalSTT, error) {
	if cfg.Name == "" {
		cfg.Name = "pocketsphinx"
	}
	if cfg.Binary == "" {
		cfg.Binary = "pocketsphinx_continuous"
	}
	set := 0
	for _, on := range []bool{cfg.Grammar != "", cfg.KeywordFile != "", len(cfg.Keywords) > 0} {
		if on {
			set++
		}
	}
	if set > 1 {
		return nil, fmt.Errorf("%s stt: set at most one of Grammar, KeywordFile and Keywords", cfg.Name)
	}
	for _, k := range cfg.Keywords {
		if strings.TrimSpace(k) == "" || strings.ContainsAny(k, "\r\n") {
			return nil, fmt.Errorf("%s stt: keyword %q must be one non-empty line", cfg.Name, k)
		}
	}
	if cfg.KeywordThreshold == 0 {
		cfg.KeywordThreshold = 1e-20
	}
	if cfg.Language = sttLanguageCode(cfg.Language); cfg.Language == "" {
		cfg.Language = "en"
	}
	if cfg.TempDir == "" {
		cfg.TempDir = os.TempDir()
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = runtime.NumCPU()
	}
	return &LocalSTT{cfg: cfg, sem: make(chan struct{}, cfg.MaxConcurrent)}, nil
}

// Name implements STT.
func (l *LocalSTT) Name() string { return l.cfg.Name }

// Tier implements STT.
func (l *LocalSTT) Tier() Tier { return TierLocal }

// Check reports whether the pocketsphinx binary can be found, so the router can leave the tier
// out at startup. The error wraps ErrUnsupported.
func (l *LocalSTT) Check() error {
	if _, err := exec.LookPath(l.cfg.Binary); err != nil {
		return l.missing(err)
	}
	return nil
}

func (l *LocalSTT) missing(err error) error {
	return fmt.Errorf("%s stt: %s not found, install the Debian packages pocketsphinx and pocketsphinx-en-us (%w): %w",
		l.cfg.Name, l.cfg.Binary, err, ErrUnsupported)
}

// model names what recognised the speech, for the transcript and the (zero) price key.
func (l *LocalSTT) model() string {
	switch {
	case l.cfg.Grammar != "":
		return "en-us-jsgf"
	case l.cfg.KeywordFile != "" || len(l.cfg.Keywords) > 0:
		return "en-us-kws"
	}
	return "en-us"
}

// Transcribe implements STT. Any audio the audio package decodes (WAV at any rate, MP3, Ogg
// Opus, raw PCM16, G.711) is brought to 16 kHz mono PCM16 WAV first. Silence gives an empty
// Text, not an error.
func (l *LocalSTT) Transcribe(ctx context.Context, req TranscribeRequest) (*Transcript, error) {
	if lang := sttLanguageCode(req.Language); lang != "" && lang != l.cfg.Language {
		return nil, fmt.Errorf("%s stt: %w: language %q (the model recognises %q)", l.cfg.Name, ErrUnsupported, req.Language, l.cfg.Language)
	}
	pcm, err := audio.Decode(req.Audio, req.Format, req.SampleRate)
	if err != nil {
		if errors.Is(err, audio.ErrUnsupportedFormat) {
			// FLAC, WebM and the like: a Whisper tier takes them as they are.
			return nil, fmt.Errorf("%s stt: decode audio: %w: %w", l.cfg.Name, err, ErrUnsupported)
		}
		return nil, fmt.Errorf("%s stt: decode audio: %w", l.cfg.Name, err)
	}
	if len(pcm.Samples) == 0 {
		return nil, fmt.Errorf("%s stt: the audio holds no samples", l.cfg.Name)
	}
	if err := l.Check(); err != nil {
		return nil, err
	}

	select {
	case l.sem <- struct{}{}:
		defer func() { <-l.sem }()
	case <-ctx.Done():
		return nil, fmt.Errorf("%s stt: %w", l.cfg.Name, ctx.Err())
	}

	dir, err := os.MkdirTemp(l.cfg.TempDir, "dartmouth-stt-*")
	if err != nil {
		return nil, fmt.Errorf("%s stt: %w", l.cfg.Name, err)
	}
	defer os.RemoveAll(dir)

	wav := filepath.Join(dir, "in.wav")
	if err := os.WriteFile(wav, audio.EncodeWAV(audio.Resample(pcm, sttPocketsphinxRate)), 0o600); err != nil {
		return nil, fmt.Errorf("%s stt: %w", l.cfg.Name, err)
	}
	// The log goes to a file rather than /dev/null so a failure can say why (a missing model,
	// a bad grammar); stdout then carries only the hypotheses.
	logFile := filepath.Join(dir, "pocketsphinx.log")
	args := []string{"-infile", wav, "-logfn", logFile}
	switch {
	case l.cfg.Grammar != "":
		args = append(args, "-jsgf", l.cfg.Grammar)
	case l.cfg.KeywordFile != "":
		args = append(args, "-kws", l.cfg.KeywordFile)
	case len(l.cfg.Keywords) > 0:
		kws := filepath.Join(dir, "keywords.txt")
		if err := os.WriteFile(kws, []byte(l.keywordList()), 0o600); err != nil {
			return nil, fmt.Errorf("%s stt: %w", l.cfg.Name, err)
		}
		args = append(args, "-kws", kws)
	}
	args = append(args, l.cfg.Args...)

	cmd := exec.CommandContext(ctx, l.cfg.Binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Should the process leave a child holding the pipes after being killed, Wait still
	// returns soon after.
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("%s stt: %w", l.cfg.Name, ctxErr)
		}
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return nil, l.missing(err)
		}
		return nil, fmt.Errorf("%s stt: %s failed: %w%s", l.cfg.Name, l.cfg.Binary, err, sttPocketsphinxDiagnosis(logFile, stderr.Bytes()))
	}
	return &Transcript{
		Text:     sttPocketsphinxText(stdout.Bytes()),
		Language: l.cfg.Language,
		Duration: pcm.Duration(),
		Provider: l.cfg.Name,
		Model:    l.model(),
	}, nil
}

// keywordList renders Keywords in pocketsphinx's -kws file format.
func (l *LocalSTT) keywordList() string {
	var b strings.Builder
	for _, k := range l.cfg.Keywords {
		k = strings.TrimSpace(k)
		if !strings.HasSuffix(k, "/") {
			k = fmt.Sprintf("%s /%g/", k, l.cfg.KeywordThreshold)
		}
		b.WriteString(k)
		b.WriteByte('\n')
	}
	return b.String()
}

// sttPocketsphinxText joins the hypotheses pocketsphinx_continuous prints, one line per
// utterance it found (an empty line for one it could not make out). Older builds prefix each
// with a nine-digit utterance number ("000000000: hello"), which is dropped.
func sttPocketsphinxText(out []byte) string {
	var words []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if id, rest, ok := strings.Cut(line, ": "); ok && len(id) == 9 && strings.Trim(id, "0123456789") == "" {
			line = strings.TrimSpace(rest)
		}
		if line != "" {
			words = append(words, line)
		}
	}
	return strings.Join(strings.Fields(strings.Join(words, " ")), " ")
}

// sttPocketsphinxDiagnosis picks the ERROR and FATAL lines out of a failed run's log (and
// stderr), for the error message.
func sttPocketsphinxDiagnosis(logFile string, stderr []byte) string {
	logData, _ := os.ReadFile(logFile)
	var found []string
	for _, src := range [][]byte{logData, stderr} {
		for _, line := range strings.Split(string(src), "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "ERROR:") || strings.HasPrefix(line, "FATAL:") {
				found = append(found, line)
			}
		}
	}
	if len(found) > 3 {
		found = found[len(found)-3:]
	}
	if len(found) == 0 {
		if s := providerSnippet(stderr); s != "" {
			return ": " + s
		}
		return ""
	}
	return ": " + strings.Join(found, "; ")
}
