package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
)

// FuzzInspectOffer: any SDP a client posts is read into the codecs it offers or refused with
// invalid_sdp (400), never a crash.
func FuzzInspectOffer(f *testing.F) {
	f.Add("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=rtpmap:111 opus/48000/2\r\n")
	f.Add("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n")
	f.Add("m=audio 0 RTP/AVP 0\r\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, sdp string) {
		_, err := inspectOffer(sdp)
		if err == nil {
			return
		}
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
			t.Fatalf("inspectOffer: %v, want a 400 envelope", err)
		}
	})
}

// FuzzRealtimeSessionSettings: the turn detection and audio formats of a Realtime
// session.update are accepted or refused with a 400 envelope naming the parameter.
func FuzzRealtimeSessionSettings(f *testing.F) {
	f.Add([]byte(`{"type":"server_vad","threshold":0.5,"prefix_padding_ms":300,"silence_duration_ms":500}`), "audio/pcm", 24000)
	f.Add([]byte(`null`), "audio/pcmu", 0)
	f.Add([]byte(`{"type":"semantic_vad"}`), "audio/pcma", 8000)
	f.Add([]byte(`{"silence_duration_ms":-1}`), "audio/pcm", -5)
	s := &Server{voiceLimits: VoiceSessionLimits{}.withDefaults()}
	f.Fuzz(func(t *testing.T, turnDetection []byte, format string, rate int) {
		if json.Valid(turnDetection) {
			if _, apiErr := s.parseTurnDetection(turnDetection); apiErr != nil && apiErr.Status != http.StatusBadRequest {
				t.Fatalf("turn detection %q: %+v", turnDetection, apiErr)
			}
		}
		if _, apiErr := parseRealtimeFormat(rtFormat{Type: format, Rate: rate}, "session.audio.input.format"); apiErr != nil && apiErr.Status != http.StatusBadRequest {
			t.Fatalf("format %q/%d: %+v", format, rate, apiErr)
		}
	})
}
