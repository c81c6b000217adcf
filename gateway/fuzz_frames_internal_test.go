package gateway

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzParseClientFrame: any text frame a client sends on /api/v2/ws is either a frame of a
// known type or an error frame with a code and a message, never a crash; and a frame that
// parsed survives a trip through JSON unchanged (what the gateway reads is what it would write).
func FuzzParseClientFrame(f *testing.F) {
	for _, seed := range []string{
		`{"type":"ping","id":"p1"}`,
		`{"type":"session.start","id":"s","agentId":"fam","sessionId":"sess_1","userId":"u","context":{"tz":"Europe/Paris","n":[1,2.5,null,true]},` +
			`"audio":{"format":"pcm16","sampleRate":16000,"output":{"format":"opus","sampleRate":48000},"base64":true},` +
			`"voice":{"tier":"local","voice":"en","speed":1.25,"language":"en","textOnly":false},` +
			`"turnDetection":{"thresholdDb":9.5,"prefixPaddingMs":300,"silenceDurationMs":500,"minSpeechMs":60}}`,
		`{"type":"text","id":"t1","text":"remind me to call mom at five pm"}`,
		`{"type":"interrupt"}`,
		`{"type":"audio.end","id":"e"}`,
		`{"type":""}`,
		`{"type":"session.stop"}`,
		`{"TYPE":"ping","Id":"case-insensitive keys"}`,
		`{"type":"text","text":"\ud800 lone surrogate","context":{}}`,
		`{"type":"session.start","audio":{},"voice":null,"context":{"big":1e308}}`,
		`{"type":"text","text":7}`,
		`{"type":"ping"`,
		`[]`,
		`null`,
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		frame, refused := parseClientFrame(data)
		if refused != nil {
			if refused.Type != "error" || refused.Code == "" || refused.Message == "" {
				t.Fatalf("refusal %+v has no code or message", refused)
			}
			if _, err := json.Marshal(refused); err != nil {
				t.Fatalf("refusal does not encode: %v", err)
			}
			return
		}
		first, err := json.Marshal(frame)
		if err != nil {
			t.Fatalf("parsed frame %+v does not encode: %v", frame, err)
		}
		again, refused := parseClientFrame(first)
		if refused != nil {
			t.Fatalf("re-encoded frame %s refused: %+v", first, refused)
		}
		// Compared as JSON: an empty map and a missing one are the same frame on the wire.
		second, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("frame changed in a round trip:\n%s\n%s", first, second)
		}
	})
}
