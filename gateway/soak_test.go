package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/voice/audio"
)

// The soak test (issue 9, acceptance 4): a steady mixed load of text and voice against one
// in-process gateway while the heap and the goroutines are sampled every second; both must
// be flat at the end, and the goroutines back to where they started once the load stops.
//
// It runs for 20 seconds in every `go test`; DARTMOUTH_SOAK=2m (any duration) makes it a
// longer soak (`make soak`).

// Bounds of "flat". Samples of the first quarter are the warm-up (caches, pools, the SQLite
// page cache filling); the rest is cut in thirds and the last third's mean compared with the
// first third's. The heap is sampled after a forced collection, so it is the live heap.
const (
	soakWarmUpFraction = 0.25
	// soakHeapGrowth and soakHeapSlack: the live heap of the last third may exceed the first
	// third's by 20% plus 2 MiB at most.
	soakHeapGrowth = 0.20
	soakHeapSlack  = 2 << 20
	// soakGoroutineSlack: goroutines of the last third may exceed the first third's mean by
	// this many (the load's in-flight requests vary from one sample to the next).
	soakGoroutineSlack = 20
	// soakGoroutineLeftover: after the load stops and its clients are closed, goroutines
	// return to the count before the load, give or take this many.
	soakGoroutineLeftover = 3
)

type soakSample struct {
	heapInuse  uint64
	goroutines int
}

// soakCounts counts completed operations by kind.
type soakCounts struct {
	chat, sse, completions, wsText, wsVoice, wsReconnects atomic.Int64
}

func TestSoakMixedLoad(t *testing.T) {
	duration := 20 * time.Second
	if v := os.Getenv("DARTMOUTH_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Second {
			t.Fatalf("DARTMOUTH_SOAK=%q: want a duration of at least 10s, like 2m", v)
		}
		duration = d
	}
	g := instantVoiceGateway(t, 300*time.Millisecond, func(c *gateway.Config) {
		c.VoiceSessions.AudioRateFactor = 1000 // each utterance is sent at once
	})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(client.CloseIdleConnections)

	runtime.GC()
	baseline := runtime.NumGoroutine()

	ctx, stop := context.WithTimeout(context.Background(), duration)
	defer stop()
	var counts soakCounts
	errs := make(chan error, 16)
	fail := func(err error) {
		if ctx.Err() == nil { // errors after the end are the load being cut off
			select {
			case errs <- err:
			default:
			}
			stop()
		}
	}
	// Each worker paces itself, so the load is steady rather than as fast as the machine.
	const gap = 20 * time.Millisecond
	var wg sync.WaitGroup
	worker := func(name string, each func(ctx context.Context, i int) error) {
		wg.Go(func() {
			tick := time.NewTicker(gap)
			defer tick.Stop()
			for i := 0; ctx.Err() == nil; i++ {
				if err := each(ctx, i); err != nil {
					fail(fmt.Errorf("%s, op %d: %w", name, i, err))
					return
				}
				select {
				case <-ctx.Done():
				case <-tick.C:
				}
			}
		})
	}
	for w := range 2 {
		worker(fmt.Sprintf("chat %d", w), func(ctx context.Context, i int) error {
			err := soakChat(ctx, client, g.URL, fmt.Sprintf("soak-chat-%d", w), fmt.Sprintf("What can you do? (%d)", i))
			if err == nil {
				counts.chat.Add(1)
			}
			return err
		})
		worker(fmt.Sprintf("sse %d", w), func(ctx context.Context, i int) error {
			err := soakChatStream(ctx, client, g.URL, fmt.Sprintf("Tell me something nice (%d)", i))
			if err == nil {
				counts.sse.Add(1)
			}
			return err
		})
	}
	worker("completions", func(ctx context.Context, i int) error {
		err := soakCompletion(ctx, client, g.URL, fmt.Sprintf("Hello there (%d)", i))
		if err == nil {
			counts.completions.Add(1)
		}
		return err
	})
	var sockets []**soakSocket // each worker's open connection, closed when the load stops
	for w := range 2 {
		var text *soakSocket
		worker(fmt.Sprintf("websocket text %d", w), func(ctx context.Context, i int) error {
			// Ten turns per connection, then a new one: connection churn is part of the load.
			if i%10 == 0 {
				if text != nil {
					text.close()
				}
				var err error
				if text, err = dialSoakSocket(ctx, g, map[string]any{"agentId": "fam", "userId": fmt.Sprintf("soak-text-%d-%d", w, i)}); err != nil {
					return err
				}
				counts.wsReconnects.Add(1)
			}
			if err := text.textTurn(ctx, fmt.Sprintf("How are you? (%d)", i)); err != nil {
				return err
			}
			counts.wsText.Add(1)
			return nil
		})
		var spoken *soakSocket
		worker(fmt.Sprintf("websocket voice %d", w), func(ctx context.Context, i int) error {
			if i%5 == 0 {
				if spoken != nil {
					spoken.close()
				}
				var err error
				spoken, err = dialSoakSocket(ctx, g, map[string]any{"agentId": "fam", "userId": fmt.Sprintf("soak-voice-%d-%d", w, i),
					"audio": map[string]any{"format": "pcm16", "sampleRate": 16000}})
				if err != nil {
					return err
				}
				counts.wsReconnects.Add(1)
			}
			// Every third reply is interrupted once its audio starts (barge-in by button).
			if err := spoken.voiceTurn(ctx, i%3 == 2); err != nil {
				return err
			}
			counts.wsVoice.Add(1)
			return nil
		})
		sockets = append(sockets, &text, &spoken)
	}

	var samples []soakSample
	sampleTick := time.NewTicker(time.Second)
	for sampling := true; sampling; {
		select {
		case <-ctx.Done():
			sampling = false
		case <-sampleTick.C:
			samples = append(samples, sampleRuntime())
		}
	}
	sampleTick.Stop()
	wg.Wait()
	for _, s := range sockets {
		if *s != nil {
			(*s).close()
		}
	}
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}

	t.Logf("soak %s: %d chat, %d SSE, %d /v1 completions, %d WebSocket text turns, %d voice turns, %d WebSocket connections",
		duration, counts.chat.Load(), counts.sse.Load(), counts.completions.Load(), counts.wsText.Load(), counts.wsVoice.Load(), counts.wsReconnects.Load())
	first, last, err := soakThirds(samples)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("live heap in use: first third %.1f MiB, last third %.1f MiB (%+.1f%%; bound +%.0f%% + %d MiB)",
		first.heap/(1<<20), last.heap/(1<<20), 100*(last.heap/first.heap-1), 100*soakHeapGrowth, soakHeapSlack>>20)
	t.Logf("goroutines: %d before the load, first third %.1f, last third %.1f (bound +%d)",
		baseline, first.goroutines, last.goroutines, soakGoroutineSlack)
	if last.heap > first.heap*(1+soakHeapGrowth)+soakHeapSlack {
		t.Errorf("the live heap grew from %.1f MiB to %.1f MiB under a steady load", first.heap/(1<<20), last.heap/(1<<20))
	}
	if last.goroutines > first.goroutines+soakGoroutineSlack {
		t.Errorf("goroutines grew from %.1f to %.1f under a steady load", first.goroutines, last.goroutines)
	}
	if counts.chat.Load() == 0 || counts.sse.Load() == 0 || counts.completions.Load() == 0 || counts.wsText.Load() == 0 || counts.wsVoice.Load() == 0 {
		t.Errorf("some kind of load never completed an operation")
	}

	// Once every client is gone, the gateway's goroutines end: the count returns to the
	// baseline. They end asynchronously (connections notice the close), so poll, bounded.
	client.CloseIdleConnections()
	after := runtime.NumGoroutine()
	for deadline := time.Now().Add(10 * time.Second); after > baseline+soakGoroutineLeftover && time.Now().Before(deadline); {
		<-time.After(50 * time.Millisecond)
		after = runtime.NumGoroutine()
	}
	t.Logf("goroutines after the load: %d (baseline %d)", after, baseline)
	if after > baseline+soakGoroutineLeftover {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines remain after the load, %d before it:\n%s", after, baseline, buf[:runtime.Stack(buf, true)])
	}
}

func sampleRuntime() soakSample {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return soakSample{heapInuse: m.HeapInuse, goroutines: runtime.NumGoroutine()}
}

type soakMeans struct{ heap, goroutines float64 }

// soakThirds drops the warm-up samples and returns the means of the first and last thirds
// of the rest.
func soakThirds(samples []soakSample) (first, last soakMeans, err error) {
	rest := samples[int(float64(len(samples))*soakWarmUpFraction):]
	third := len(rest) / 3
	if third < 2 {
		return first, last, fmt.Errorf("only %d samples: too short a soak to judge", len(samples))
	}
	mean := func(s []soakSample) soakMeans {
		var m soakMeans
		for _, x := range s {
			m.heap += float64(x.heapInuse)
			m.goroutines += float64(x.goroutines)
		}
		m.heap /= float64(len(s))
		m.goroutines /= float64(len(s))
		return m
	}
	return mean(rest[:third]), mean(rest[len(rest)-third:]), nil
}

func soakPost(ctx context.Context, client *http.Client, url, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, fmt.Errorf("POST %s: status %d: %s", url, resp.StatusCode, data)
	}
	return resp, nil
}

func soakChat(ctx context.Context, client *http.Client, base, user, message string) error {
	body, _ := json.Marshal(map[string]any{"agentId": "fam", "userId": user, "message": message})
	resp, err := soakPost(ctx, client, base+"/api/v2/chat", string(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		Content   string `json:"content"`
		SessionID string `json:"sessionId"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return err
	}
	if out.Content == "" || out.SessionID == "" {
		return fmt.Errorf("chat answered no content or session: %+v", out)
	}
	return nil
}

func soakChatStream(ctx context.Context, client *http.Client, base, message string) error {
	body, _ := json.Marshal(map[string]any{"agentId": "fam", "message": message})
	resp, err := soakPost(ctx, client, base+"/api/v2/chat/stream", string(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	r := newSSEReader(resp.Body)
	deltas := 0
	for {
		ev, err := r.next()
		if err != nil {
			return fmt.Errorf("after %d deltas: %w", deltas, err)
		}
		switch ev.Name {
		case "delta":
			deltas++
		case "done":
			if deltas == 0 {
				return errors.New("stream done without a delta")
			}
			return nil
		case "error":
			return fmt.Errorf("stream error: %v", ev.Data)
		}
	}
}

func soakCompletion(ctx context.Context, client *http.Client, base, message string) error {
	body, _ := json.Marshal(map[string]any{"model": "fam", "stream": true, "messages": []any{map[string]any{"role": "user", "content": message}}})
	resp, err := soakPost(ctx, client, base+"/v1/chat/completions", string(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == "data: [DONE]" {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("completion stream ended without [DONE]")
}

// soakSocket is one /api/v2/ws connection with a started session.
type soakSocket struct {
	conn *websocket.Conn
}

func dialSoakSocket(ctx context.Context, g *testGateway, start map[string]any) (*soakSocket, error) {
	conn, _, err := websocket.Dial(ctx, wsURL(g), nil)
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(1 << 20)
	s := &soakSocket{conn: conn}
	start["type"] = "session.start"
	if err := s.send(ctx, start); err != nil {
		s.close()
		return nil, err
	}
	if _, err := s.until(ctx, nil, "session.started"); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *soakSocket) close() { s.conn.Close(websocket.StatusNormalClosure, "") }

func (s *soakSocket) send(ctx context.Context, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.conn.Write(ctx, websocket.MessageText, data)
}

// until reads frames until a JSON frame of one of the types; an error frame is an error.
// onAudio is called for each binary frame.
func (s *soakSocket) until(ctx context.Context, onAudio func(), types ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		typ, data, err := s.conn.Read(ctx)
		if err != nil {
			return "", err
		}
		if typ == websocket.MessageBinary {
			if onAudio != nil {
				onAudio()
			}
			continue
		}
		var f struct{ Type, Code, Message string }
		if err := json.Unmarshal(data, &f); err != nil {
			return "", fmt.Errorf("unparsable frame %q: %w", data, err)
		}
		if f.Type == "error" {
			return "", fmt.Errorf("error frame %s: %s", f.Code, f.Message)
		}
		for _, want := range types {
			if f.Type == want {
				return f.Type, nil
			}
		}
	}
}

func (s *soakSocket) textTurn(ctx context.Context, text string) error {
	if err := s.send(ctx, map[string]any{"type": "text", "text": text}); err != nil {
		return err
	}
	_, err := s.until(ctx, nil, "response.done")
	return err
}

// soakUtterance is what the microphone sends for one voice turn: room noise, a tone the VAD
// takes for speech, then audio.end.
var soakUtterance = func() [][]byte {
	pcm := append(roomNoise(200), tonePCM(300)...)
	var frames [][]byte
	for i := 0; i+320 <= len(pcm); i += 320 {
		frames = append(frames, audio.PCM16ToBytes(pcm[i:i+320]))
	}
	return frames
}()

func (s *soakSocket) voiceTurn(ctx context.Context, interrupt bool) error {
	for _, f := range soakUtterance {
		if err := s.conn.Write(ctx, websocket.MessageBinary, f); err != nil {
			return err
		}
	}
	if err := s.send(ctx, map[string]any{"type": "audio.end"}); err != nil {
		return err
	}
	audioFrames, interrupted := 0, false
	var sendErr error
	onAudio := func() {
		audioFrames++
		if interrupt && !interrupted {
			interrupted = true
			sendErr = s.send(ctx, map[string]any{"type": "interrupt"})
		}
	}
	if _, err := s.until(ctx, onAudio, "response.done", "response.interrupted"); err != nil {
		return err
	}
	if sendErr != nil {
		return sendErr
	}
	if audioFrames == 0 {
		return errors.New("a voice turn ended without audio")
	}
	return nil
}
