package voice

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"testing"
	"time"
)

// Helpers shared by the TTS tests; all named tts* so they cannot clash with the STT tests in
// the same package.

// ttsRequest is what a fake speech server received.
type ttsRequest struct {
	Method    string
	Path      string // decoded
	RawPath   string // as sent, escapes kept
	RawQuery  string
	Header    http.Header
	Body      []byte
	BodyError error
}

// JSON decodes the request body into a generic map, failing the test if it is not JSON.
func (r ttsRequest) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("request body is not JSON: %v: %q", err, r.Body)
	}
	return m
}

// ttsRecord captures a request for the test to inspect.
func ttsRecord(r *http.Request) ttsRequest {
	body, err := io.ReadAll(r.Body)
	return ttsRequest{
		Method:    r.Method,
		Path:      r.URL.Path,
		RawPath:   r.URL.EscapedPath(),
		RawQuery:  r.URL.RawQuery,
		Header:    r.Header.Clone(),
		Body:      body,
		BodyError: err,
	}
}

// ttsAudioServer answers every request with contentType and chunks of audio, flushing each
// chunk on its own. Before each chunk after the first it waits for a value on gate (when gate
// is not nil), so a test can prove it read a chunk before the next was even written. Requests
// are recorded on the returned channel.
func ttsAudioServer(t *testing.T, contentType string, chunks [][]byte, gate <-chan struct{}) (*httptest.Server, <-chan ttsRequest) {
	t.Helper()
	reqs := make(chan ttsRequest, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs <- ttsRecord(r)
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(http.StatusOK)
		for i, c := range chunks {
			if i > 0 && gate != nil {
				select {
				case <-gate:
				case <-r.Context().Done():
					return
				}
			}
			if _, err := w.Write(c); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return srv, reqs
}

// ttsErrorServer answers every request with status, headers and body.
func ttsErrorServer(t *testing.T, status int, header map[string]string, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// ttsStallServer writes first, flushes, and then holds the response open until the client
// goes away; done is closed when the handler has seen the client leave.
func ttsStallServer(t *testing.T, first []byte) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "audio/mpeg")
		_, _ = w.Write(first)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv, done
}

// ttsNextRequest returns the request the fake server recorded, failing if there is none.
func ttsNextRequest(t *testing.T, reqs <-chan ttsRequest) ttsRequest {
	t.Helper()
	select {
	case r := <-reqs:
		return r
	default:
		t.Fatal("the server received no request")
		return ttsRequest{}
	}
}

// ttsAsProviderError unwraps err into a *ProviderError, failing if it is none.
func ttsAsProviderError(t *testing.T, err error) *ProviderError {
	t.Helper()
	var pe *ProviderError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *ProviderError", err, err)
	}
	return pe
}

// ttsRequireBinary fails (never skips: CI must notice a missing tool) when a program the test
// needs is not installed.
func ttsRequireBinary(t *testing.T, program, debianPackage string) {
	t.Helper()
	if _, err := exec.LookPath(program); err != nil {
		t.Fatalf("%s is not installed: apt-get install -y %s (%v)", program, debianPackage, err)
	}
}

// ttsWAV is the part of a WAV header the tests check.
type ttsWAV struct {
	Format, Channels, Bits int
	SampleRate             int
	DataBytes              int
}

// Duration is how long the WAV plays.
func (w ttsWAV) Duration() time.Duration {
	bytesPerSecond := w.SampleRate * w.Channels * w.Bits / 8
	return time.Duration(float64(w.DataBytes) / float64(bytesPerSecond) * float64(time.Second))
}

// ttsParseWAV reads a RIFF/WAVE file's fmt and data chunks, failing the test if it is not one.
func ttsParseWAV(t *testing.T, b []byte) ttsWAV {
	t.Helper()
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		t.Fatalf("not a RIFF/WAVE file: % x", b[:min(len(b), 16)])
	}
	var w ttsWAV
	sawFmt := false
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int(binary.LittleEndian.Uint32(b[p+4:]))
		body := b[p+8:]
		switch id {
		case "fmt ":
			if size < 16 || len(body) < 16 {
				t.Fatalf("short fmt chunk: %d bytes", size)
			}
			w.Format = int(binary.LittleEndian.Uint16(body[0:]))
			w.Channels = int(binary.LittleEndian.Uint16(body[2:]))
			w.SampleRate = int(binary.LittleEndian.Uint32(body[4:]))
			w.Bits = int(binary.LittleEndian.Uint16(body[14:]))
			sawFmt = true
		case "data":
			if !sawFmt {
				t.Fatal("data chunk before fmt chunk")
			}
			w.DataBytes = min(size, len(body))
			return w
		}
		p += 8 + size + size%2
	}
	t.Fatalf("no data chunk in %d bytes", len(b))
	return w
}

// ttsReadAll reads a Speech's audio to the end and closes it.
func ttsReadAll(t *testing.T, s *Speech) []byte {
	t.Helper()
	defer s.Audio.Close()
	b, err := io.ReadAll(s.Audio)
	if err != nil {
		t.Fatalf("reading the audio: %v", err)
	}
	return b
}

// ttsChunk makes n bytes of recognisable fake audio.
func ttsChunk(seed byte, n int) []byte {
	return bytes.Repeat([]byte{seed, seed + 1, seed + 2, 0xff}, n/4+1)[:n]
}
