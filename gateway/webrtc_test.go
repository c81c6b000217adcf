package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/voice"
	"github.com/dartmouth-gw/dartmouth/voice/audio"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/opus/pkg/oggreader"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"go.uber.org/goleak"
)

// The client side of these tests is a real pion PeerConnection on loopback: it offers, posts
// the offer to the gateway, connects, streams audio in real time on its track and reads the
// gateway's audio and data channel events.

// rtcHTTP does not keep connections alive, so no idle connection outlives a test (goleak).
var rtcHTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}

// rtcCodec is a codec the test client offers or sends.
type rtcCodec string

const (
	codecOpus rtcCodec = "opus"
	codecPCMU rtcCodec = "pcmu"
)

func (c rtcCodec) params() webrtc.RTPCodecParameters {
	if c == codecOpus {
		return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111}
	}
	return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0}
}

// rtcClientOptions shape the test client's offer.
type rtcClientOptions struct {
	offer []rtcCodec // codecs offered, in order; none: no audio section
	send  rtcCodec   // codec of the client's track
	// channel is how the client sets up events: "events" (opens one), "negotiated" (a
	// pre-negotiated channel the gateway never hears of, so the gateway must open its own).
	channel string
	// mux, when set, carries all of the client's ICE traffic, so the test can cut the
	// client's network by closing it (no DTLS close_notify, no SCTP abort: the client just
	// vanishes).
	mux *net.UDPConn
}

type rtcTestClient struct {
	t      *testing.T
	pc     *webrtc.PeerConnection
	track  *webrtc.TrackLocalStaticSample
	answer map[string]any

	events     chan map[string]any
	seen       []map[string]any
	dcMu       sync.Mutex
	dc         *webrtc.DataChannel
	dcOpen     chan struct{}
	dcOpenOnce sync.Once
	dcClosed   chan struct{}

	audioMu    sync.Mutex
	received   []int16 // reply audio, decoded, at receivedRate
	receivedHz int
	gotAudio   chan struct{}

	wg     sync.WaitGroup
	cancel context.CancelFunc
	ctx    context.Context
}

// newRTCPeer makes the client's PeerConnection with the offered codecs.
func newRTCPeer(t *testing.T, codecs []rtcCodec) *webrtc.PeerConnection {
	t.Helper()
	return newRTCPeerOn(t, codecs, nil)
}

// newRTCPeerOn makes a client PeerConnection whose ICE runs on mux, when given.
func newRTCPeerOn(t *testing.T, codecs []rtcCodec, mux *net.UDPConn) *webrtc.PeerConnection {
	t.Helper()
	var m webrtc.MediaEngine
	for _, c := range codecs {
		if err := m.RegisterCodec(c.params(), webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	quiet := logging.NewDefaultLoggerFactory() // the client's closing noise is not the test's
	quiet.DefaultLogLevel = logging.LogLevelDisabled
	se.LoggerFactory = quiet
	if mux != nil {
		udpMux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: mux, Logger: quiet.NewLogger("ice")})
		t.Cleanup(func() { udpMux.Close() })
		se.SetICEUDPMux(udpMux)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(&m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

// offerSDP gathers and returns the peer's offer.
func offerSDP(t *testing.T, pc *webrtc.PeerConnection) string {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	within(t, gathered, "ICE gathering")
	return pc.LocalDescription().SDP
}

// dialRTC connects a test client to the gateway; body holds the offer's other fields.
func dialRTC(t *testing.T, g *testGateway, o rtcClientOptions, body map[string]any) *rtcTestClient {
	t.Helper()
	c := &rtcTestClient{t: t, pc: newRTCPeerOn(t, o.offer, o.mux), events: make(chan map[string]any, 4096), dcOpen: make(chan struct{}),
		dcClosed: make(chan struct{}), gotAudio: make(chan struct{}, 1)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	t.Cleanup(c.close)
	if len(o.offer) > 0 {
		var err error
		c.track, err = webrtc.NewTrackLocalStaticSample(o.send.params().RTPCodecCapability, "mic", "client")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.pc.AddTransceiverFromTrack(c.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
			t.Fatal(err)
		}
	}
	c.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.readAudio(tr)
		}()
	})
	switch o.channel {
	case "events":
		dc, err := c.pc.CreateDataChannel("events", nil)
		if err != nil {
			t.Fatal(err)
		}
		c.watch(dc)
	case "negotiated":
		negotiated, id := true, uint16(7)
		if _, err := c.pc.CreateDataChannel("unused", &webrtc.DataChannelInit{Negotiated: &negotiated, ID: &id}); err != nil {
			t.Fatal(err)
		}
		c.pc.OnDataChannel(c.watch)
	}
	body["sdp"], body["type"] = offerSDP(t, c.pc), "offer"
	resp, out := postRTC(t, g, body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("offer refused: %d %v", resp.StatusCode, out)
	}
	c.answer = out
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: out["sdp"].(string)}); err != nil {
		t.Fatalf("the gateway's answer: %v\n%s", err, out["sdp"])
	}
	return c
}

func postRTC(t *testing.T, g *testGateway, body any) (*http.Response, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := rtcHTTP.Post(g.URL+"/api/v2/webrtc/offer", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("response is not JSON (%d): %s", resp.StatusCode, raw)
	}
	return resp, out
}

func (c *rtcTestClient) watch(dc *webrtc.DataChannel) {
	dc.OnOpen(func() {
		c.dcMu.Lock()
		c.dc = dc
		c.dcMu.Unlock()
		c.dcOpenOnce.Do(func() { close(c.dcOpen) })
	})
	dc.OnMessage(func(msg webrtc.DataChannelMessage) {
		var f map[string]any
		if err := json.Unmarshal(msg.Data, &f); err != nil {
			f = map[string]any{"type": "unparsable", "raw": string(msg.Data)}
		}
		select {
		case c.events <- f:
		default:
		}
	})
	dc.OnClose(func() {
		select {
		case <-c.dcClosed:
		default:
			close(c.dcClosed)
		}
	})
}

// readAudio decodes the gateway's track into received.
func (c *rtcTestClient) readAudio(tr *webrtc.TrackRemote) {
	var dec *audio.OpusDecoder
	rate := 8000
	if strings.EqualFold(tr.Codec().MimeType, webrtc.MimeTypeOpus) {
		dec, _ = audio.NewOpusDecoder(48000)
		rate = 48000
	}
	c.audioMu.Lock()
	c.receivedHz = rate
	c.audioMu.Unlock()
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		var pcm []int16
		if dec != nil {
			if pcm, err = dec.Decode(pkt.Payload); err != nil {
				continue
			}
		} else {
			pcm = audio.DecodeULaw(pkt.Payload)
		}
		c.audioMu.Lock()
		c.received = append(c.received, pcm...)
		c.audioMu.Unlock()
		select {
		case c.gotAudio <- struct{}{}:
		default:
		}
	}
}

// waitAudio waits until d of reply audio has arrived and returns all of it so far.
func (c *rtcTestClient) waitAudio(d time.Duration) (pcm []int16, rate int) {
	c.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		c.audioMu.Lock()
		pcm, rate = append([]int16(nil), c.received...), c.receivedHz
		c.audioMu.Unlock()
		if rate > 0 && time.Duration(len(pcm))*time.Second/time.Duration(rate) >= d {
			return pcm, rate
		}
		select {
		case <-c.gotAudio:
		case <-deadline:
			c.t.Fatalf("waited 20 s for %v of reply audio; got %d samples (events %v)", d, len(pcm), c.seen)
		}
	}
}

// waitFor reads events until one of type typ satisfies ok (nil: any) and returns it.
func (c *rtcTestClient) waitFor(typ string, ok func(map[string]any) bool) map[string]any {
	c.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case f := <-c.events:
			c.seen = append(c.seen, f)
			if f["type"] == typ && (ok == nil || ok(f)) {
				return f
			}
		case <-deadline:
			c.t.Fatalf("waited 20 s for a %s event; seen %v", typ, c.seen)
			return nil
		}
	}
}

func (c *rtcTestClient) sendFrame(f any) {
	c.t.Helper()
	within(c.t, c.dcOpen, "the events channel to open")
	b, _ := json.Marshal(f)
	c.dcMu.Lock()
	dc := c.dc
	c.dcMu.Unlock()
	if err := dc.SendText(string(b)); err != nil {
		c.t.Fatal(err)
	}
}

// stream sends frames in real time, one per 20 ms tick, until they run out or the client
// closes.
func (c *rtcTestClient) stream(frames [][]byte) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for _, f := range frames {
			select {
			case <-c.ctx.Done():
				return
			case <-tick.C:
			}
			if err := c.track.WriteSample(media.Sample{Data: f, Duration: 20 * time.Millisecond}); err != nil {
				return
			}
		}
	}()
}

func (c *rtcTestClient) close() {
	c.cancel()
	_ = c.pc.GracefulClose()
	c.wg.Wait()
}

// speechWAV is the spoken sentence (flite's kal16 voice, 16 kHz) between room noise: 400 ms
// before (the VAD learns the room from the first frames) and 1.5 s after (the end of the
// utterance); also written as a WAV file for opusenc.
func speechWAV(t *testing.T, text string) (audio.PCM, string) {
	t.Helper()
	pcm := audio.PCM{Rate: 16000, Samples: append(append(roomNoise(400), spokenPCM(t, text)...), roomNoise(1500)...)}
	path := filepath.Join(t.TempDir(), "speech.wav")
	if err := os.WriteFile(path, audio.EncodeWAV(pcm), 0o600); err != nil {
		t.Fatal(err)
	}
	return pcm, path
}

// pcmuFrames cuts speech into 20 ms G.711 µ-law frames at 8 kHz.
func pcmuFrames(pcm audio.PCM) [][]byte {
	s := audio.Resample(pcm, 8000).Samples
	var frames [][]byte
	for i := 0; i+160 <= len(s); i += 160 {
		frames = append(frames, audio.EncodeULaw(s[i:i+160]))
	}
	return frames
}

// opusFrames encodes a WAV into 20 ms Opus packets with libopus's own encoder (opusenc, as a
// browser would send them), so the test needs no cgo.
func opusFrames(t *testing.T, wavPath string) [][]byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "speech.opus")
	if b, err := exec.Command("opusenc", "--quiet", "--framesize", "20", wavPath, out).CombinedOutput(); err != nil {
		t.Fatalf("opusenc (make test installs opus-tools): %v: %s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for {
		packet, _, err := r.ParseNextPacket()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(packet) == 0 || bytes.HasPrefix(packet, []byte("OpusTags")) {
			continue
		}
		frames = append(frames, packet)
	}
	return frames
}

func rms(s []int16) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(max(len(s), 1)))
}

// keywordVoiceRouter is localVoiceRouter with pocketsphinx spotting keywords.
func keywordVoiceRouter(t *testing.T, keywords ...string) *voice.Router {
	t.Helper()
	tts, err := voice.NewLocalTTS(voice.LocalTTSConfig{Engine: voice.LocalEngineFlite})
	if err != nil {
		t.Fatal(err)
	}
	stt, err := voice.NewLocalSTT(voice.LocalSTTConfig{Keywords: keywords})
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(tts.Check(), stt.Check()); err != nil {
		t.Fatalf("local engines unavailable (make test installs flite and pocketsphinx): %v", err)
	}
	router, err := voice.NewRouter(voice.RouterConfig{TTS: []voice.TTS{tts}, STT: []voice.STT{stt}})
	if err != nil {
		t.Fatal(err)
	}
	return router
}

// activeWebRTCSessions is the gauge of live WebRTC voice sessions.
const activeWebRTCSessions = `dartmouth_voice_sessions_active{transport="webrtc"}`

// waitSessionsGone waits until no WebRTC session is left and the user gets no more pushed
// events. It polls: the server tears down on its own schedule, and no event tells the test.
func waitSessionsGone(t *testing.T, g *testGateway, userID string) {
	t.Helper()
	waitForMetric(t, g, activeWebRTCSessions, func(v float64) bool { return v == 0 })
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := g.Srv.DeliverToUser(context.Background(), userID, map[string]any{"type": "reminder"})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("user %s still has %d sessions registered", userID, n)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// Acceptance: a pion client sends the spoken WAV on its audio track, gets the transcript and
// the reply's text on the data channel, and the reply's audio on its track, with the real
// local engines. "browser-like" offers Opus and PCMU and sends Opus (pure-Go decoding on the
// gateway), hearing Opus with libopus built in, else PCMU; "pcmu" offers PCMU only.
func TestWebRTCVoiceTurnWithLocalEngines(t *testing.T) {
	pcm, wavPath := speechWAV(t, "remind me to call mom at five pm")
	cases := []struct {
		name   string
		router func(*testing.T) *voice.Router
		opts   rtcClientOptions
		frames [][]byte
		hear   string
	}{
		{"browser-like", func(t *testing.T) *voice.Router { return localVoiceRouter(t) },
			rtcClientOptions{offer: []rtcCodec{codecOpus, codecPCMU}, send: codecOpus, channel: "events"},
			opusFrames(t, wavPath), map[bool]string{true: voice.FormatOpus, false: voice.FormatULaw}[audio.OpusEncoderAvailable]},
		// Telephone-band audio (8 kHz) is beyond pocketsphinx's wideband language model ("what
		// part of"), as it would be on a phone line: spotting the words, as a narrowband
		// deployment would, finds them (and not in "buy milk", checked by hand).
		{"pcmu", func(t *testing.T) *voice.Router { return keywordVoiceRouter(t, "call mom") },
			rtcClientOptions{offer: []rtcCodec{codecPCMU}, send: codecPCMU, channel: "events"}, pcmuFrames(pcm), voice.FormatULaw},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, nil, func(c *gateway.Config) { c.Voice = tc.router(t) })
			c := dialRTC(t, g, tc.opts, map[string]any{"agentId": "fam", "userId": "u-" + tc.name, "voice": map[string]any{"tier": "local"}})
			sid, _ := c.answer["sessionId"].(string)
			if c.answer["type"] != "answer" || !strings.HasPrefix(sid, "ses_") {
				t.Fatalf("answer %v", c.answer)
			}
			if out, _ := c.answer["audio"].(map[string]any); out["format"] != tc.hear {
				t.Fatalf("the gateway will send %v, want %s", c.answer["audio"], tc.hear)
			}
			if in, _ := c.answer["input"].(map[string]any); in["format"] != map[rtcCodec]string{codecOpus: voice.FormatOpus, codecPCMU: voice.FormatULaw}[tc.opts.send] {
				t.Fatalf("the gateway expects %v, the client sends %s", c.answer["input"], tc.opts.send)
			}
			if started := c.waitFor("session.started", nil); started["sessionId"] != sid {
				t.Fatalf("session.started %v, answer's session %s", started, sid)
			}
			c.stream(tc.frames)
			transcript := c.waitFor("transcript.final", nil)
			if text, _ := transcript["text"].(string); !strings.Contains(strings.ToLower(text), "call mom") {
				t.Fatalf("transcript %q does not have the words", text)
			}
			c.waitFor("response.delta", func(f map[string]any) bool { return f["text"] != "" })
			got, rate := c.waitAudio(600 * time.Millisecond)
			if wantRate := map[string]int{voice.FormatOpus: 48000, voice.FormatULaw: 8000}[tc.hear]; rate != wantRate {
				t.Fatalf("reply audio at %d Hz, want %d", rate, wantRate)
			}
			if level := rms(got); level < 300 {
				t.Fatalf("reply audio is silent: RMS %.0f over %d samples", level, len(got))
			} else {
				t.Logf("reply audio: %d ms at %d Hz, RMS %.0f", len(got)*1000/rate, rate, level)
			}
			for _, f := range c.seen {
				if f["type"] == "error" {
					t.Fatalf("error event during the turn: %v", f)
				}
			}
		})
	}
}

// A realistic offer the tests can send without connecting.
func sampleOffer(t *testing.T, codecs ...rtcCodec) string {
	t.Helper()
	pc := newRTCPeer(t, codecs)
	defer pc.GracefulClose()
	if len(codecs) > 0 {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pc.CreateDataChannel("events", nil); err != nil {
		t.Fatal(err)
	}
	return offerSDP(t, pc)
}

// Bad offers get the envelope, and leave no session behind.
func TestWebRTCBadOffers(t *testing.T) {
	g := instantVoiceGateway(t, 2*time.Second)
	good := sampleOffer(t, codecOpus, codecPCMU)
	onlyG722 := strings.NewReplacer("opus/48000/2", "G722/8000", "PCMU/8000", "G722/8000").Replace(sampleOffer(t, codecOpus))
	noFingerprint := "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\n" +
		"a=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=sendrecv\r\na=rtpmap:0 PCMU/8000\r\n"
	videoOnly := "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtpmap:96 VP8/90000\r\n"
	offer := func(sdp string, extra ...string) string {
		b, _ := json.Marshal(map[string]any{"sdp": sdp, "type": "offer", "agentId": "fam"})
		if len(extra) > 0 {
			b, _ = json.Marshal(map[string]any{"sdp": sdp, "type": extra[0], "agentId": extra[1]})
		}
		return string(b)
	}
	cases := []struct {
		name, contentType, body string
		header                  map[string]string
		status                  int
		code                    string
	}{
		{"malformed JSON", "application/json", `{"sdp":`, nil, 400, gateway.CodeInvalidJSON},
		{"no sdp", "application/json", `{"type":"offer","agentId":"fam"}`, nil, 400, gateway.CodeInvalidSDP},
		{"not SDP", "application/json", offer("hello"), nil, 400, gateway.CodeInvalidSDP},
		{"no DTLS fingerprint", "application/json", offer(noFingerprint), nil, 400, gateway.CodeInvalidSDP},
		{"video only", "application/json", offer(videoOnly), nil, 400, gateway.CodeInvalidSDP},
		{"no codec in common", "application/json", offer(onlyG722), nil, 400, gateway.CodeUnsupportedCodec},
		{"an answer", "application/json", offer(good, "answer", "fam"), nil, 400, gateway.CodeValidation},
		{"unknown agent", "application/json", offer(good, "offer", "nobody"), nil, 404, gateway.CodeAgentNotFound},
		{"unknown agent, SDP body", "application/sdp", good, nil, 404, gateway.CodeAgentNotFound},
		{"oversized", "application/json", offer(good + strings.Repeat("a=x-padding\r\n", 8000)), nil, 413, gateway.CodeBodyTooLarge},
		{"foreign origin", "application/json", offer(good), map[string]string{"Origin": "https://evil.example"}, 403, gateway.CodeForbiddenOrigin},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := g.URL + "/api/v2/webrtc/offer"
			if tc.contentType == "application/sdp" {
				url += "?agentId=nobody"
			}
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.contentType)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := rtcHTTP.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&out)
			e, _ := out["error"].(map[string]any)
			if resp.StatusCode != tc.status || errCode(out) != tc.code || e["message"] == "" {
				t.Fatalf("got %d %v, want %d %s", resp.StatusCode, out, tc.status, tc.code)
			}
		})
	}
	if n := metricValue(t, g, activeWebRTCSessions); n != 0 {
		t.Fatalf("%v sessions left by refused offers", n)
	}
}

// The client vanishes while a reply plays, by closing its connection or by losing its
// network (ICE then fails): the gateway ends the session, frees the user's slot and leaves no
// goroutine behind.
func TestWebRTCClientVanishesMidTurn(t *testing.T) {
	for _, how := range []string{"closes", "network gone"} {
		t.Run(how, func(t *testing.T) {
			g := instantVoiceGateway(t, 2*time.Second, func(c *gateway.Config) {
				c.WebRTC.DisconnectedTimeout, c.WebRTC.FailedTimeout = 300*time.Millisecond, 300*time.Millisecond
			})
			baseline := goleak.IgnoreCurrent()
			opts := rtcClientOptions{offer: []rtcCodec{codecPCMU}, send: codecPCMU, channel: "events"}
			if how == "network gone" {
				conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					t.Fatal(err)
				}
				opts.mux = conn
			}
			c := dialRTC(t, g, opts, map[string]any{"agentId": "fam", "userId": "u-vanish"})
			c.waitFor("session.started", nil)
			if n := metricValue(t, g, activeWebRTCSessions); n != 1 {
				t.Fatalf("%v active sessions, want 1", n)
			}
			silence := bytes.Repeat([]byte{0xFF}, 160)
			frames := make([][]byte, 500)
			for i := range frames {
				frames[i] = silence
			}
			c.stream(frames) // the gateway is reading the track when the client goes
			c.sendFrame(map[string]any{"type": "text", "text": "Tell me about my family."})
			c.waitFor("response.delta", nil)
			c.waitAudio(60 * time.Millisecond)
			var err error
			if opts.mux != nil {
				err = opts.mux.Close()
			} else {
				err = c.pc.Close()
			}
			if err != nil {
				t.Fatal(err)
			}
			waitSessionsGone(t, g, "u-vanish")
			c.close()
			http.DefaultClient.CloseIdleConnections() // metricValue's
			goleak.VerifyNone(t, baseline)
		})
	}
}

// Data channel frames, a channel the gateway opens itself when the client opens none, events
// pushed to the user, the SDP-body form of the offer, and a client that never connects.
func TestWebRTCDataChannelFrames(t *testing.T) {
	g := instantVoiceGateway(t, 200*time.Millisecond, func(c *gateway.Config) {
		c.WebRTC.ConnectTimeout = time.Second
		c.VoiceSessions.MaxSessionsPerUser = 1
	})
	c := dialRTC(t, g, rtcClientOptions{offer: []rtcCodec{codecPCMU}, send: codecPCMU, channel: "negotiated"},
		map[string]any{"agentId": "fam", "userId": "u-frames"})
	if started := c.waitFor("session.started", nil); started["sessionId"] != c.answer["sessionId"] {
		t.Fatalf("session.started %v on the gateway's channel", started)
	}
	resp, out := postRTC(t, g, map[string]any{"sdp": sampleOffer(t, codecPCMU), "type": "offer", "agentId": "fam", "userId": "u-frames"})
	if resp.StatusCode != http.StatusTooManyRequests || errCode(out) != gateway.CodeTooManySessions {
		t.Fatalf("a second session for the user: %d %v", resp.StatusCode, out)
	}
	c.sendFrame(map[string]any{"type": "ping", "id": "p1"})
	if f := c.waitFor("pong", nil); f["id"] != "p1" {
		t.Fatalf("pong %v", f)
	}
	for _, tc := range []struct {
		frame any
		code  string
	}{
		{map[string]any{"type": "dance", "id": "x"}, gateway.CodeUnknownType},
		{map[string]any{"type": "audio.end", "id": "e"}, gateway.CodeNoSpeech},
		{map[string]any{"type": "session.start"}, gateway.CodeAlreadyStarted},
	} {
		c.sendFrame(tc.frame)
		if f := c.waitFor("error", nil); f["code"] != tc.code || f["message"] == "" {
			t.Fatalf("frame %v: got %v, want %s", tc.frame, f, tc.code)
		}
	}
	c.dcMu.Lock()
	_ = c.dc.SendText("{not json")
	c.dcMu.Unlock()
	if f := c.waitFor("error", nil); f["code"] != gateway.CodeInvalidJSON {
		t.Fatalf("malformed frame: %v", f)
	}
	if n, err := g.Srv.DeliverToUser(context.Background(), "u-frames", map[string]any{"type": "reminder", "text": "call mom"}); err != nil || n != 1 {
		t.Fatalf("DeliverToUser: %d, %v", n, err)
	}
	if f := c.waitFor("reminder", nil); f["text"] != "call mom" {
		t.Fatalf("pushed event %v", f)
	}
	c.sendFrame(map[string]any{"type": "text", "text": "Hello there."})
	done := c.waitFor("response.done", nil)
	if done["text"] == "" || done["sessionId"] != c.answer["sessionId"] {
		t.Fatalf("response.done %v", done)
	}
	if got, _ := c.waitAudio(100 * time.Millisecond); rms(got) < 300 {
		t.Fatalf("reply audio is silent: RMS %.0f", rms(got))
	}

	c.close()
	waitSessionsGone(t, g, "u-frames")

	// The same offer as a bare SDP body: the answer comes back as SDP. The client never
	// connects: the gateway gives up after ConnectTimeout.
	pc := newRTCPeer(t, []rtcCodec{codecPCMU})
	defer pc.GracefulClose()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		t.Fatal(err)
	}
	resp, err := rtcHTTP.Post(g.URL+"/api/v2/webrtc/offer?agentId=fam&userId=u-sdp", "application/sdp", strings.NewReader(offerSDP(t, pc)))
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Content-Type") != "application/sdp" || resp.Header.Get("X-Session-Id") == "" {
		t.Fatalf("SDP answer: %d %v %s", resp.StatusCode, resp.Header, answer)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		t.Fatalf("SDP answer unusable: %v", err)
	}
	_ = pc.GracefulClose()
	waitSessionsGone(t, g, "u-sdp")
}

// The session ends at its maximum duration with an error saying so, and on shutdown with one
// saying that, without holding the shutdown up.
func TestWebRTCSessionEnds(t *testing.T) {
	t.Run("max duration", func(t *testing.T) {
		g := instantVoiceGateway(t, time.Second, func(c *gateway.Config) { c.VoiceSessions.MaxDuration = 1500 * time.Millisecond })
		c := dialRTC(t, g, rtcClientOptions{offer: []rtcCodec{codecPCMU}, send: codecPCMU, channel: "events"},
			map[string]any{"agentId": "fam", "userId": "u-expire"})
		c.waitFor("session.started", nil)
		if f := c.waitFor("error", nil); f["code"] != gateway.CodeSessionExpired {
			t.Fatalf("want session_expired, got %v", f)
		}
		within(t, c.dcClosed, "the events channel to close")
		waitSessionsGone(t, g, "u-expire")
	})
	t.Run("shutdown", func(t *testing.T) {
		g := instantVoiceGateway(t, 300*time.Millisecond)
		c := dialRTC(t, g, rtcClientOptions{offer: []rtcCodec{codecPCMU}, send: codecPCMU, channel: "events"},
			map[string]any{"agentId": "fam", "userId": "u-drain"})
		c.waitFor("session.started", nil)
		// A reply is being spoken when the shutdown begins: it finishes, then the client is
		// told to reconnect elsewhere.
		c.sendFrame(map[string]any{"type": "text", "text": "Hello there."})
		c.waitFor("response.delta", nil)
		start := time.Now()
		g.shutdown(t)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("shutdown took %v", d)
		}
		if done := c.waitFor("response.done", nil); done["text"] == "" {
			t.Fatalf("response.done %v", done)
		}
		if f := c.waitFor("error", nil); f["code"] != gateway.CodeShuttingDown {
			t.Fatalf("want shutting_down, got %v", f)
		}
	})
}
