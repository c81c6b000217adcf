package voice

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// F5-TTS's socket server (src/f5_tts/socket_server.py) speaks this protocol: the client sends
// UTF-8 text; the server answers with little-endian float32 samples, mono at 24 kHz, and then
// the three bytes "END"; it serves one connection at a time and closes it once the client has
// closed its side.
const (
	f5SocketSampleRate = 24000
	f5SocketEnd        = "END"
	// The server reads the text with a single recv(1024) and decodes it as UTF-8: longer text
	// would arrive as two requests, possibly cut inside a character. Longer texts are sent as
	// several requests of at most this many bytes, cut between words.
	f5SocketMaxBytes = 1024
	f5ReadBuffer     = 32 << 10
)

// F5TTSConfig configures the F5-TTS client. Set exactly one of BaseURL (HTTP mode) and Addr
// (socket mode).
type F5TTSConfig struct {
	// Name reported as the provider; Name + "/" + model is the price key. Default "f5-tts".
	Name string
	// BaseURL selects HTTP mode: an OpenAI-compatible wrapper around F5-TTS (such as
	// matthewhand/openai-f5-tts, port 5060), including the version path as for OpenAI:
	// requests go to BaseURL + "/audio/speech", e.g. "http://f5:5060/v1".
	BaseURL string
	// APIKey is sent as "Authorization: Bearer <key>" in HTTP mode. Empty sends none.
	APIKey string
	// Model and Voice are sent in HTTP mode when the request names none; empty leaves them out
	// so the server's defaults apply (the wrapper's default voice is "Emilia"). In socket mode
	// the server has one fixed reference voice and these are only reported.
	Model, Voice string
	// Addr selects socket mode: the host:port of F5-TTS's own socket_server.py (default port
	// 9998).
	Addr string
	// MaxChars refuses longer texts with ErrTextTooLong. Default 5000.
	MaxChars int
	// HTTPClient carries HTTP-mode requests. Default http.DefaultClient; it should have no
	// overall Timeout, since audio streams.
	HTTPClient *http.Client
}

// F5TTS is the self-hosted quality tier: F5-TTS, reached either through an OpenAI-compatible
// HTTP wrapper (formats as for OpenAITTS) or through F5-TTS's raw socket server.
//
// In socket mode the audio is FormatPCM16 at 24000 Hz whatever the request asked for, the
// converted float32 samples clamped to [-1, 1] and scaled by 32767 (as F5-TTS's own WAV writer
// does); Voice and Speed are ignored, since the server has one voice at one speed. Synthesize
// connects, sends the text and waits for the first audio, so an unreachable or failing server
// is an error the router can act on; the rest streams through Speech.Audio from a goroutine
// that stops when ctx is cancelled or the caller closes Audio. The client closes its sending
// side after the text, which tells the server it has no more requests: the server then closes
// the connection after "END", and the end of the stream is unambiguous even though "END" could
// also be the first three bytes of a sample.
//
// It is safe for concurrent use; the official server serves connections one at a time, so
// concurrent requests queue there.
type F5TTS struct {
	cfg  F5TTSConfig
	http *ttsSpeechAPI // nil in socket mode
}

var _ TTS = (*F5TTS)(nil)

// NewF5TTS builds the client; it fails unless exactly one of BaseURL and Addr is set and valid.
func NewF5TTS(cfg F5TTSConfig) (*F5TTS, error) {
	if cfg.Name == "" {
		cfg.Name = "f5-tts"
	}
	if cfg.MaxChars == 0 {
		cfg.MaxChars = 5000
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	f := &F5TTS{cfg: cfg}
	switch {
	case cfg.BaseURL != "" && cfg.Addr != "":
		return nil, fmt.Errorf("%s tts: both BaseURL and Addr are set; set BaseURL for an OpenAI-compatible server or Addr for the socket server", cfg.Name)
	case cfg.BaseURL != "":
		endpoint, err := ttsEndpoint(cfg.Name, cfg.BaseURL, "/audio/speech")
		if err != nil {
			return nil, err
		}
		f.http = &ttsSpeechAPI{
			name:     cfg.Name,
			endpoint: endpoint,
			apiKey:   cfg.APIKey,
			model:    cfg.Model,
			voice:    cfg.Voice,
			maxChars: cfg.MaxChars,
			client:   cfg.HTTPClient,
		}
	case cfg.Addr != "":
		if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
			return nil, fmt.Errorf("%s tts: socket address %q: %w", cfg.Name, cfg.Addr, err)
		}
	default:
		return nil, fmt.Errorf("%s tts: neither BaseURL nor Addr is set", cfg.Name)
	}
	return f, nil
}

// Name implements TTS.
func (f *F5TTS) Name() string { return f.cfg.Name }

// Tier implements TTS.
func (f *F5TTS) Tier() Tier { return TierSelfHosted }

// Synthesize implements TTS.
func (f *F5TTS) Synthesize(ctx context.Context, req SpeechRequest) (*Speech, error) {
	if f.http != nil {
		s, err := f.http.synthesize(ctx, req)
		if err == nil && s.Model == "" {
			s.Model = "f5-tts"
		}
		return s, err
	}
	name := f.cfg.Name
	if err := ttsCheckText(name, req.Text, f.cfg.MaxChars); err != nil {
		return nil, err
	}
	if _, err := ttsSpeed(name, req.Speed, 0, math.MaxFloat64); err != nil {
		return nil, err
	}
	pieces := ttsSplitText(req.Text, f5SocketMaxBytes)
	// The stream gets its own cancel so that closing Audio early stops it at once, even while
	// it waits on the server rather than on the pipe.
	sctx, cancel := context.WithCancel(ctx)
	first, err := f.open(sctx, pieces[0])
	if err != nil {
		cancel()
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		defer cancel()
		f.stream(sctx, first, pieces[1:], pw)
	}()
	model := f.cfg.Model
	if model == "" {
		model = "f5-tts"
	}
	return &Speech{
		Audio:       &f5Audio{PipeReader: pr, cancel: cancel},
		Format:      FormatPCM16,
		ContentType: ttsContentType(FormatPCM16, f5SocketSampleRate),
		SampleRate:  f5SocketSampleRate,
		Provider:    name,
		Model:       model,
		Voice:       f.cfg.Voice,
	}, nil
}

// f5Audio is the socket mode's Speech.Audio: closing it also stops the goroutine feeding it.
type f5Audio struct {
	*io.PipeReader
	cancel context.CancelFunc
}

func (a *f5Audio) Close() error {
	a.cancel()
	return a.PipeReader.Close()
}

// f5Conn is one request on the socket server, its text sent and its first audio buffered.
type f5Conn struct {
	conn net.Conn
	r    *bufio.Reader
}

// open connects, sends text, closes the sending side and waits until the server has started
// answering.
func (f *F5TTS) open(ctx context.Context, text string) (*f5Conn, error) {
	name := f.cfg.Name
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", f.cfg.Addr)
	if err != nil {
		if ctxErr := providerContextErr(ctx, name, "tts"); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, &ProviderError{Provider: name, Op: "tts", Message: "connecting to the socket server failed", Err: err}
	}
	// Until the first audio arrives, cancelling ctx must interrupt the write and the wait.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	fail := func(msg string, err error) (*f5Conn, error) {
		conn.Close()
		if !stop() {
			return nil, providerContextErr(ctx, name, "tts")
		}
		if errors.Is(err, io.EOF) {
			err = nil
		}
		return nil, &ProviderError{Provider: name, Op: "tts", Message: msg, Err: err}
	}
	if _, err := io.WriteString(conn, text); err != nil {
		return fail("sending the text failed", err)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		if err := tcp.CloseWrite(); err != nil {
			return fail("closing the sending side failed", err)
		}
	}
	r := bufio.NewReaderSize(conn, f5ReadBuffer)
	if _, err := r.Peek(1); err != nil {
		return fail("the server closed the connection without sending audio", err)
	}
	if !stop() {
		conn.Close()
		return nil, providerContextErr(ctx, name, "tts")
	}
	return &f5Conn{conn: conn, r: r}, nil
}

// stream copies the audio of first, then of each further piece of text, into pw as PCM16. It
// returns when all is sent, when ctx is cancelled or when the reader closes the pipe.
func (f *F5TTS) stream(ctx context.Context, first *f5Conn, rest []string, pw *io.PipeWriter) {
	// Cancelling ctx must also free a write blocked on a reader that stopped reading.
	stop := context.AfterFunc(ctx, func() { pw.CloseWithError(providerContextErr(ctx, f.cfg.Name, "tts")) })
	defer stop()
	c := first
	for i := 0; ; i++ {
		if err := f.copySamples(ctx, c, pw); err != nil {
			pw.CloseWithError(err)
			return
		}
		if i == len(rest) {
			pw.Close()
			return
		}
		var err error
		if c, err = f.open(ctx, rest[i]); err != nil {
			pw.CloseWithError(err)
			return
		}
	}
}

// copySamples reads one answer up to its "END" and the server's close, converting the float32
// samples to PCM16 as they arrive. A sample is passed on as soon as at least len("END") bytes
// follow it, since "END" can only be the last bytes of the answer; what remains at the close
// must be exactly "END".
func (f *F5TTS) copySamples(ctx context.Context, c *f5Conn, w io.Writer) error {
	name := f.cfg.Name
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	defer stop()
	defer c.conn.Close()
	buf := make([]byte, f5ReadBuffer)
	pending := 0 // bytes at the start of buf not yet converted
	out := make([]byte, 0, f5ReadBuffer/2)
	for {
		n, rerr := c.r.Read(buf[pending:])
		pending += n
		if k := (pending - len(f5SocketEnd)) / 4; k > 0 {
			out = f5PCM16(out[:0], buf[:4*k])
			if _, err := w.Write(out); err != nil {
				return err
			}
			pending = copy(buf, buf[4*k:pending])
		}
		switch {
		case rerr == nil:
		case errors.Is(rerr, io.EOF):
			if string(buf[:pending]) != f5SocketEnd {
				return &ProviderError{Provider: name, Op: "tts",
					Message: fmt.Sprintf("the socket server closed the connection without the END marker (%d trailing bytes)", pending)}
			}
			return nil
		default:
			if err := providerContextErr(ctx, name, "tts"); err != nil {
				return err
			}
			return &ProviderError{Provider: name, Op: "tts", Message: "reading audio from the socket server failed", Err: rerr}
		}
	}
}

// f5PCM16 appends src, little-endian float32 samples, to dst as little-endian PCM16.
func f5PCM16(dst, src []byte) []byte {
	for i := 0; i+4 <= len(src); i += 4 {
		s := f5Sample(math.Float32frombits(binary.LittleEndian.Uint32(src[i:])))
		dst = binary.LittleEndian.AppendUint16(dst, uint16(s))
	}
	return dst
}

// f5Sample converts one float sample to PCM16: clamped to [-1, 1], scaled by 32767 and
// rounded; NaN is silence.
func f5Sample(v float32) int16 {
	x := float64(v)
	if math.IsNaN(x) {
		return 0
	}
	x = min(max(x, -1), 1)
	return int16(math.Round(x * 32767))
}

// ttsSplitText cuts text into pieces of at most maxBytes bytes, preferring to cut after a
// sentence, then between words, and only as a last resort between two characters. Pieces are
// trimmed and empty ones dropped.
func ttsSplitText(text string, maxBytes int) []string {
	var pieces []string
	text = strings.TrimSpace(text)
	for len(text) > maxBytes {
		window := text[:maxBytes+1] // one byte more: a space just past the limit is a fine cut
		cut := ttsSentenceEnd(window)
		if cut < maxBytes/2 {
			cut = strings.LastIndexFunc(window, unicode.IsSpace)
		}
		if cut <= 0 {
			cut = maxBytes
			for cut > 0 && !utf8.RuneStart(text[cut]) {
				cut--
			}
		}
		if p := strings.TrimSpace(text[:cut]); p != "" {
			pieces = append(pieces, p)
		}
		text = strings.TrimSpace(text[cut:])
	}
	if text != "" {
		pieces = append(pieces, text)
	}
	return pieces
}

// ttsSentenceEnd returns the index just past the last sentence end in s (".", "!", "?" or ";"
// followed by a space), or -1.
func ttsSentenceEnd(s string) int {
	for i := len(s) - 2; i >= 0; i-- {
		if strings.IndexByte(".!?;", s[i]) >= 0 && (s[i+1] == ' ' || s[i+1] == '\n') {
			return i + 1
		}
	}
	return -1
}
