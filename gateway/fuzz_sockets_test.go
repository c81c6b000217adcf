package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/voice"
	"github.com/dartmouth-gw/dartmouth/voice/audio"
)

// The socket fuzz targets drive the real read loops of /api/v2/ws and /v1/realtime: each input
// is a short sequence of client frames on a fresh connection of a real gateway (voice through
// fake engines, replies from a fixed provider), followed by a marker frame the endpoint must
// answer. Whatever the frames, the connection stays up, every event the gateway sends is a
// JSON object with a type, every error carries a code and a message and is never an
// internal_error, and no handler panics.

// maxFuzzFrames bounds the frames of one input, so one input stays one short exchange.
const maxFuzzFrames = 8

// panicCatcher is the gateway's ErrorReporter: a panic the recover middleware caught (the
// Realtime read loop runs in its handler) fails the input. The /api/v2/ws session runs on a
// goroutine of its own, where a panic crashes the worker, which the fuzzer reports as well.
type panicCatcher struct {
	mu     sync.Mutex
	panics []string
}

func (p *panicCatcher) Report(r gateway.ErrorReport) {
	if !r.Panic {
		return
	}
	p.mu.Lock()
	p.panics = append(p.panics, fmt.Sprintf("%s %s: %v", r.Method, r.Route, r.Err))
	p.mu.Unlock()
}

func (p *panicCatcher) check(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.panics) > 0 {
		t.Fatalf("handler panicked: %v", p.panics)
	}
}

// fuzzGateway serves both socket endpoints with voice: a fake local engine transcribes and
// speaks (20 ms per sentence), and no limit on turns, sessions or audio rate gets in the way
// of what the fuzzer explores.
func fuzzGateway(f *testing.F) (*testGateway, *panicCatcher) {
	f.Helper()
	fake := &voiceFake{tier: voice.TierLocal, name: "local-fake", speechLen: 20 * time.Millisecond}
	router, err := voice.NewRouter(voice.RouterConfig{TTS: []voice.TTS{fake}, STT: []voice.STT{fake}})
	if err != nil {
		f.Fatal(err)
	}
	catcher := &panicCatcher{}
	g := startGateway(f, fixedReply{"Sure. ", "Done."}, func(c *gateway.Config) {
		c.Voice = router
		c.ErrorReporter = catcher
		c.RateLimits = map[string]gateway.Limit{gateway.PlanFree: {Requests: 1 << 30, Per: time.Hour}}
		c.VoiceSessions.AudioRateFactor = 1000
		c.VoiceSessions.MaxSessionsPerUser = 1 << 20
	})
	return g, catcher
}

// socketMsg is one WebSocket message.
type socketMsg struct {
	typ  websocket.MessageType
	data []byte
}

// splitFrames cuts a fuzz input into up to maxFuzzFrames text frames, one per line.
func splitFrames(in []byte) []socketMsg {
	var out []socketMsg
	for line := range bytes.SplitSeq(in, []byte("\n")) {
		if len(out) == maxFuzzFrames {
			break
		}
		out = append(out, socketMsg{websocket.MessageText, line})
	}
	return out
}

// exchange dials url, sends frames and then marker, and returns the JSON events read until
// isMarker matches one. The connection closing first, or a handler panic, fails t.
func exchange(t *testing.T, g *testGateway, catcher *panicCatcher, url string, frames []socketMsg, marker []byte, isMarker func(map[string]any) bool) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 22)

	type read struct {
		typ  websocket.MessageType
		data []byte
		err  error
	}
	reads := make(chan read, 64)
	readCtx, stopReading := context.WithCancel(ctx)
	var reader sync.WaitGroup
	reader.Go(func() {
		defer close(reads)
		for {
			typ, data, err := conn.Read(readCtx)
			select {
			case reads <- read{typ, data, err}:
			case <-readCtx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	})
	defer reader.Wait()
	defer stopReading()

	for _, m := range append(frames, socketMsg{websocket.MessageText, marker}) {
		if err := conn.Write(ctx, m.typ, m.data); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	var events []map[string]any
	for {
		var r read
		select {
		case r = <-reads:
		case <-ctx.Done():
			t.Fatalf("no answer to the marker; events so far: %v", events)
		}
		if r.err != nil {
			catcher.check(t)
			t.Fatalf("connection ended before the marker was answered (%v); events: %v", r.err, events)
		}
		if r.typ == websocket.MessageBinary {
			continue // reply audio
		}
		var ev map[string]any
		if err := json.Unmarshal(r.data, &ev); err != nil {
			t.Fatalf("event is not a JSON object: %q", r.data)
		}
		if typ, _ := ev["type"].(string); typ == "" {
			t.Fatalf("event without a type: %s", r.data)
		}
		if isMarker(ev) {
			conn.Close(websocket.StatusNormalClosure, "")
			if err := g.Srv.WaitSocketsDone(ctx); err != nil {
				t.Fatalf("the connection's handler did not end: %v", err)
			}
			catcher.check(t)
			return events
		}
		events = append(events, ev)
	}
}

func pcmTone(rate, ms int, amp float64) []int16 {
	out := make([]int16, rate*ms/1000)
	for i := range out {
		out[i] = int16(amp * 32767 * math.Sin(2*math.Pi*440*float64(i)/float64(rate)))
	}
	return out
}

// FuzzWebSocketFrames: control frames (one per line of the first input) and then one binary
// audio frame (the second input) on /api/v2/ws.
func FuzzWebSocketFrames(f *testing.F) {
	tone16 := audio.PCM16ToBytes(pcmTone(16000, 100, 0.5))
	start := func(spec string) string { return `{"type":"session.start","id":"s","agentId":"fam",` + spec + `}` }
	for _, seed := range []struct{ control, audio string }{
		{start(`"audio":{"format":"pcm16","sampleRate":16000}`), string(tone16)},
		{start(`"audio":{"format":"pcm16","sampleRate":24000,"output":{"format":"g711_ulaw"},"base64":true}`) + "\n" + `{"type":"audio.end","id":"e"}`, string(tone16[:960])},
		{start(`"audio":{"format":"g711_ulaw","sampleRate":8000}`), string(audio.EncodeULaw(pcmTone(8000, 60, 0.5)))},
		{start(`"audio":{"format":"g711_alaw"},"turnDetection":{"thresholdDb":3,"prefixPaddingMs":20,"silenceDurationMs":40,"minSpeechMs":20}`), string(audio.EncodeALaw(pcmTone(8000, 60, 0.5)))},
		{start(`"audio":{"format":"opus","sampleRate":48000}`), "\xfc\xff\xfe"},
		{start(`"audio":{"format":"mp3"}`), "\xff\xfb\x90\x64"},
		{start(`"audio":{"format":"pcm16","sampleRate":-1,"output":{"format":"flac","sampleRate":1e9}}`), ""},
		{start(`"voice":{"tier":"native"}`) + "\n" + `{"type":"text","id":"t","text":"hello"}`, "\x01"},
		{start(`"voice":{"tier":"premium","voice":"x","speed":-3,"language":"zz","textOnly":true}`) + "\n" + `{"type":"text","text":""}` + "\n" + `{"type":"interrupt"}`, ""},
		{start(`"context":{"tz":"Europe/Paris"}`) + "\n" + `{"type":"text","id":"t1","text":"what is 2+2"}` + "\n" + `{"type":"text","id":"t2","text":"again"}` + "\n" + `{"type":"interrupt"}`, ""},
		{start(``) + "\n" + start(`"audio":{}`), ""},
		{`{"type":"text","text":"before start"}` + "\n" + `{"type":"audio.end"}` + "\n" + `{"type":"interrupt"}`, "\x00\x00"},
		{`{"type":"session.start","sessionId":"sess_missing","userId":"u"}`, ""},
		{`{"type":""}` + "\n" + `{"type":"nope"}` + "\n" + `not json` + "\n" + `[1]` + "\n" + ``, ""},
	} {
		f.Add([]byte(seed.control), []byte(seed.audio))
	}
	g, catcher := fuzzGateway(f)
	const maxAudio = 32 << 10 // under the 64 KiB frame limit, which closes the connection by design
	f.Fuzz(func(t *testing.T, control, pcm []byte) {
		frames := splitFrames(control)
		if len(pcm) > 0 {
			frames = append(frames, socketMsg{websocket.MessageBinary, pcm[:min(len(pcm), maxAudio)]})
		}
		events := exchange(t, g, catcher, wsURL(g), frames, []byte(`{"type":"ping","id":"fuzz-marker"}`),
			func(ev map[string]any) bool { return ev["type"] == "pong" && ev["id"] == "fuzz-marker" })
		for _, ev := range events {
			if ev["type"] != "error" {
				continue
			}
			code, _ := ev["code"].(string)
			msg, _ := ev["message"].(string)
			if code == "" || msg == "" || code == gateway.CodeInternal {
				t.Fatalf("error frame %v: want a client error code and a message", ev)
			}
		}
	})
}

// FuzzRealtimeEvents: client events (one per line) on /v1/realtime, after session.created.
func FuzzRealtimeEvents(f *testing.F) {
	b64 := func(s []int16) string { return base64.StdEncoding.EncodeToString(audio.PCM16ToBytes(s)) }
	speech := b64(pcmTone(24000, 200, 0.5))
	for _, seed := range []string{
		`{"type":"session.update","event_id":"u1","session":{"type":"realtime","instructions":"Be brief.","output_modalities":["audio"],` +
			`"audio":{"input":{"format":{"type":"audio/pcm","rate":24000},"turn_detection":{"type":"server_vad","threshold":0.5,"prefix_padding_ms":300,"silence_duration_ms":200,"create_response":true},"transcription":{"language":"en"}},` +
			`"output":{"format":{"type":"audio/pcmu"},"voice":"alloy","speed":1.2}}}}`,
		`{"type":"session.update","session":{"audio":{"input":{"turn_detection":null}}}}` + "\n" +
			`{"type":"input_audio_buffer.append","audio":"` + speech + `"}` + "\n" + `{"type":"input_audio_buffer.commit"}` + "\n" + `{"type":"response.create"}`,
		`{"type":"input_audio_buffer.append","event_id":"a","audio":"` + speech + `"}` + "\n" + `{"type":"input_audio_buffer.clear"}`,
		`{"type":"input_audio_buffer.append","audio":"not base64!"}` + "\n" + `{"type":"input_audio_buffer.append"}` + "\n" + `{"type":"input_audio_buffer.append","audio":"AAE="}`,
		`{"type":"conversation.item.create","item":{"id":"i1","type":"message","role":"user","content":[{"type":"input_text","text":"hello there"}]}}` + "\n" + `{"type":"response.create"}` + "\n" + `{"type":"response.cancel"}`,
		`{"type":"conversation.item.create","item":{"type":"function_call","role":"assistant","content":[{"type":"input_audio"}]}}` + "\n" + `{"type":"conversation.item.create","item":{"role":"user","content":[]}}`,
		`{"type":"conversation.item.truncate","item_id":"item_x","content_index":1,"audio_end_ms":-5}` + "\n" + `{"type":"response.cancel","response_id":"resp_x"}`,
		`{"type":"session.update","session":{"modalities":["text"],"voice":"alloy","tools":[{"type":"function"}]}}` + "\n" + `{"type":"session.update","session":{"type":"transcription"}}`,
		`{"type":"session.update","session":{"output_modalities":["text"],"audio":{"output":{"voice":{"id":""},"speed":9},"input":{"format":{"type":"audio/pcm","rate":16000},"turn_detection":{"type":"semantic_vad","threshold":2}}}}}`,
		`{"type":"session.update","session":null}` + "\n" + `{"type":"session.update","session":"x"}` + "\n" + `{"type":"input_audio_buffer.commit"}`,
		`{"type":"conversation.item.retrieve","item_id":"i1"}` + "\n" + `{"type":"output_audio_buffer.clear"}` + "\n" + `{"type":""}` + "\n" + `{"event_id":7}` + "\n" + `{"type":"x","content_index":"zero"}` + "\n" + `]`,
	} {
		f.Add([]byte(seed))
	}
	g, catcher := fuzzGateway(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		frames := splitFrames(in)
		events := exchange(t, g, catcher, realtimeURL(g, "model=fam"), frames, []byte(`{"type":"fuzz.marker","event_id":"fuzz-marker"}`),
			func(ev map[string]any) bool {
				e, _ := ev["error"].(map[string]any)
				return ev["type"] == "error" && e["event_id"] == "fuzz-marker"
			})
		for i, ev := range events {
			if id, _ := ev["event_id"].(string); !strings.HasPrefix(id, "event_") {
				t.Fatalf("event without an event_id: %v", ev)
			}
			if i == 0 && ev["type"] != "session.created" {
				t.Fatalf("first event %v, want session.created", ev)
			}
			if ev["type"] != "error" {
				continue
			}
			e, _ := ev["error"].(map[string]any)
			code, _ := e["code"].(string)
			msg, _ := e["message"].(string)
			typ, _ := e["type"].(string)
			if code == "" || msg == "" || typ == "" || code == gateway.CodeInternal {
				t.Fatalf("error event %v: want a type, a client error code and a message", ev)
			}
		}
	})
}
