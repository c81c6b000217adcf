package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/voice"
	"github.com/dartmouth-gw/dartmouth/voice/audio"
	"github.com/labstack/echo/v4"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// WebRTC on POST /api/v2/webrtc/offer: the client sends an SDP offer (with its ICE candidates:
// there is no trickle) and gets the answer once the gateway has gathered its own. One
// PeerConnection per voice session:
//
//   - Audio: one sendrecv audio transceiver. The client's Opus (decoded in pure Go) or PCMU goes
//     to the session's pipeline packet by packet; the reply goes back as Opus at 48 kHz when the
//     gateway is built with libopus and the client offered Opus, else as PCMU. The answer lists
//     the codec the gateway wants to receive first (a browser sends with the first codec of
//     the answer), so a browser talking to a gateway without libopus sends Opus and hears PCMU.
//   - Events: a data channel the client opens (any label, "events" by convention) carries the
//     same JSON frames as the WebSocket: session.started, speech.started, transcript.final,
//     response.delta, response.done, response.interrupted, error, pong, and events pushed to
//     the user (DeliverToUser). The client may send text, interrupt, audio.end and ping. When
//     the offer has a data channel section but the client opens no channel, the gateway opens
//     one, labelled "events", shortly after the connection is up.
//   - End: the session ends when ICE fails (FailedTimeout after the network went quiet), the
//     client closes the connection or the events channel, the voice session reaches its
//     maximum duration, the client never connects (ConnectTimeout), or the gateway shuts down.

// Error codes of the WebRTC offer.
const (
	CodeInvalidSDP       = "invalid_sdp"
	CodeUnsupportedCodec = "unsupported_codec"
)

// WebRTCConfig configures the WebRTC transport. The zero value works on a LAN and on
// loopback: host candidates only, loopback included, on any UDP port.
type WebRTCConfig struct {
	// ICEServers are the STUN and TURN servers the gateway gathers candidates from (a STUN
	// server finds its public address behind NAT; a TURN server relays when nothing else gets
	// through). Default none: host candidates only.
	ICEServers []ICEServer
	// UDPPortMin and UDPPortMax bound the UDP ports of the gateway's ICE candidates, for a
	// firewall that opens a range. Default 0 and 0: any ephemeral port.
	UDPPortMin, UDPPortMax uint16
	// GatherTimeout bounds the wait for ICE gathering (host candidates are instant; STUN and
	// TURN take a round trip) before the answer is sent with the candidates found so far.
	// Default 5s.
	GatherTimeout time.Duration
	// ConnectTimeout ends a session whose client has not connected this long after the
	// answer. Default 30s.
	ConnectTimeout time.Duration
	// DisconnectedTimeout is how long ICE waits without traffic before it calls the
	// connection disconnected; FailedTimeout how much longer before it fails, which ends the
	// session. Defaults 5s and 10s.
	DisconnectedTimeout time.Duration
	FailedTimeout       time.Duration
	// MaxOfferBytes is the largest offer accepted. Default 64 KiB (offers are a few KiB).
	MaxOfferBytes int64
}

// ICEServer is a STUN or TURN server, as in the browser's RTCIceServer.
type ICEServer struct {
	// URLs such as "stun:stun.example.com:3478" or "turn:turn.example.com:3478?transport=udp".
	URLs []string
	// Username and Credential authenticate to a TURN server; STUN needs none.
	Username   string
	Credential string
}

func (c WebRTCConfig) withDefaults() WebRTCConfig {
	if c.GatherTimeout <= 0 {
		c.GatherTimeout = 5 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 30 * time.Second
	}
	if c.DisconnectedTimeout <= 0 {
		c.DisconnectedTimeout = 5 * time.Second
	}
	if c.FailedTimeout <= 0 {
		c.FailedTimeout = 10 * time.Second
	}
	if c.MaxOfferBytes <= 0 {
		c.MaxOfferBytes = 64 << 10
	}
	return c
}

// webrtcOffer is the JSON body of POST /api/v2/webrtc/offer.
type webrtcOffer struct {
	SDP           string           `json:"sdp"`
	Type          string           `json:"type"`
	AgentID       string           `json:"agentId"`
	SessionID     string           `json:"sessionId,omitempty"`
	UserID        string           `json:"userId,omitempty"`
	Voice         *wsVoiceSpec     `json:"voice,omitempty"`
	TurnDetection *wsTurnDetection `json:"turnDetection,omitempty"`
	Context       map[string]any   `json:"context,omitempty"`
}

// webrtcAnswer is the JSON response.
type webrtcAnswer struct {
	SDP       string `json:"sdp"`
	Type      string `json:"type"`
	SessionID string `json:"sessionId"`
	AgentID   string `json:"agentId"`
	Resumed   bool   `json:"resumed"`
	// Audio is what the gateway sends on the track; Input what it expects to receive. Absent
	// when there is no audio that way.
	Audio *wsAudioFormat `json:"audio,omitempty"`
	Input *wsAudioFormat `json:"input,omitempty"`
}

// rtcCodec is an RTP audio codec the gateway speaks, with the pipeline format it maps to.
type rtcCodec struct {
	format string
	rate   int // pipeline frames' sample rate; also the RTP clock rate
	params webrtc.RTPCodecParameters
}

var (
	rtcOpus = &rtcCodec{format: voice.FormatOpus, rate: 48000, params: webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        111,
	}}
	rtcPCMU = &rtcCodec{format: voice.FormatULaw, rate: 8000, params: webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000},
		PayloadType:        0,
	}}
)

func (c *rtcCodec) spec() *wsAudioFormat {
	if c == nil {
		return nil
	}
	return &wsAudioFormat{Format: c.format, SampleRate: c.rate}
}

// offerInfo is what the gateway needs to know of an offer before answering it.
type offerInfo struct {
	audio       bool // an audio section that is not rejected
	opus, pcmu  bool // codecs offered for it
	application bool // a data channel section
}

// inspectOffer parses the offer; errors are the client's (invalid_sdp).
func inspectOffer(sdpText string) (offerInfo, error) {
	if strings.TrimSpace(sdpText) == "" {
		return offerInfo{}, newAPIError(http.StatusBadRequest, CodeInvalidSDP, "sdp is required: the client's SDP offer, with its ICE candidates")
	}
	parsed, err := (&webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdpText}).Unmarshal()
	if err != nil {
		return offerInfo{}, &APIError{Status: http.StatusBadRequest, Code: CodeInvalidSDP, Message: "the offer is not valid SDP: " + err.Error(), cause: err}
	}
	var info offerInfo
	for _, md := range parsed.MediaDescriptions {
		switch strings.ToLower(md.MediaName.Media) {
		case "application":
			info.application = true
		case "audio":
			if md.MediaName.Port.Value == 0 {
				continue // a section the offerer itself rejected
			}
			info.audio = true
			for _, f := range md.MediaName.Formats {
				if f == "0" { // PCMU's static payload type needs no rtpmap
					info.pcmu = true
				}
			}
			for _, a := range md.Attributes {
				if a.Key != "rtpmap" {
					continue
				}
				_, encoding, _ := strings.Cut(a.Value, " ")
				name, _, _ := strings.Cut(encoding, "/")
				switch strings.ToLower(name) {
				case "opus":
					info.opus = true
				case "pcmu":
					info.pcmu = true
				}
			}
		}
	}
	if !info.audio && !info.application {
		return offerInfo{}, newAPIError(http.StatusBadRequest, CodeInvalidSDP, "the offer has neither an audio section nor a data channel: add an audio transceiver or a data channel before creating it")
	}
	return info, nil
}

// chooseCodecs picks what the gateway receives (Opus when offered: it decodes in pure Go) and
// sends (Opus only with libopus built in, else PCMU); out is nil when no audio is sent.
func chooseCodecs(info offerInfo, audioOut bool) (in, out *rtcCodec, err error) {
	if !info.audio {
		return nil, nil, nil
	}
	switch {
	case info.opus:
		in = rtcOpus
	case info.pcmu:
		in = rtcPCMU
	default:
		return nil, nil, newAPIError(http.StatusBadRequest, CodeUnsupportedCodec, "the offer's audio has neither Opus nor PCMU; offer one of them")
	}
	if !audioOut {
		return in, nil, nil
	}
	switch {
	case info.opus && audio.OpusEncoderAvailable:
		out = rtcOpus
	case info.pcmu:
		out = rtcPCMU
	default:
		return nil, nil, newAPIError(http.StatusBadRequest, CodeUnsupportedCodec,
			"this gateway sends Opus only when built with libopus, and the offer has no PCMU: offer PCMU too, or ask for text only (voice.textOnly)")
	}
	return in, out, nil
}

// readOffer reads the offer as JSON, or as a bare SDP body (Content-Type: application/sdp,
// the rest in the query string, as OpenAI's WebRTC endpoint takes it).
func (s *Server) readOffer(c echo.Context, limit int64) (offer webrtcOffer, sdpBody bool, err error) {
	r := c.Request()
	r.Body = http.MaxBytesReader(c.Response(), r.Body, limit)
	ct, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	if ct != "application/sdp" {
		if err := decodeJSON(c, &offer); err != nil {
			return offer, false, err
		}
		if offer.Type != "" && offer.Type != "offer" {
			return offer, false, newAPIError(http.StatusBadRequest, CodeValidation, "type is %s: this endpoint answers offers (type \"offer\")", strconvQuote(offer.Type))
		}
		return offer, false, nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return offer, true, err
	}
	q := r.URL.Query()
	offer = webrtcOffer{SDP: string(body), Type: "offer", AgentID: q.Get("agentId"), SessionID: q.Get("sessionId"), UserID: q.Get("userId")}
	if q.Has("tier") || q.Has("voice") || q.Has("language") {
		offer.Voice = &wsVoiceSpec{Tier: q.Get("tier"), Voice: q.Get("voice"), Language: q.Get("language")}
	}
	return offer, true, nil
}

// webrtcOffer answers an SDP offer and starts the voice session that the connection carries.
func (s *Server) webrtcOffer(c echo.Context) error {
	r := c.Request()
	if !s.originAllowed(r) {
		return newAPIError(http.StatusForbidden, CodeForbiddenOrigin, "origin %q is not allowed", r.Header.Get("Origin"))
	}
	if s.draining() {
		return newAPIError(http.StatusServiceUnavailable, CodeShuttingDown, "the gateway is shutting down")
	}
	cfg := s.cfg.WebRTC.withDefaults()
	offer, sdpBody, err := s.readOffer(c, cfg.MaxOfferBytes)
	if err != nil {
		return err
	}
	info, err := inspectOffer(offer.SDP)
	if err != nil {
		return err
	}
	opts := voiceOptions{Transport: "webrtc", Context: offer.Context}
	if v := offer.Voice; v != nil {
		opts.Tier, opts.Voice, opts.Speed, opts.Language, opts.TextOnly = v.Tier, v.Voice, v.Speed, v.Language, v.TextOnly
	}
	if td := offer.TurnDetection; td != nil {
		opts.VAD = voice.VADConfig{ThresholdDB: td.ThresholdDB, PrefixPadding: ms(td.PrefixPaddingMs),
			SilenceDuration: ms(td.SilenceDurationMs), MinSpeech: ms(td.MinSpeechMs)}
	}
	native := strings.EqualFold(strings.TrimSpace(opts.Tier), string(voice.TierNative))
	opts.TextOnly = opts.TextOnly || !info.audio // no audio section: nothing to play the reply on
	in, out, err := chooseCodecs(info, !opts.TextOnly && !native)
	if err != nil {
		return err
	}
	if in != nil {
		opts.InputFormat, opts.InputSampleRate = in.format, in.rate
	}
	if out != nil {
		opts.OutputFormat, opts.OutputSampleRate = out.format, out.rate
	}
	if offer.UserID, err = s.callerUser(c, offer.UserID); err != nil {
		return err
	}
	if !s.trackSocket() {
		return newAPIError(http.StatusServiceUnavailable, CodeShuttingDown, "the gateway is shutting down")
	}
	rs, err := s.newRTCSession(c, cfg, offer, info, opts, in, out)
	if err != nil {
		s.sockets.Done()
		return err
	}
	go rs.run()

	c.Response().Header().Set("X-Session-Id", rs.conv.SessionID)
	if sdpBody {
		return c.Blob(http.StatusCreated, "application/sdp", []byte(rs.answer))
	}
	return c.JSON(http.StatusOK, webrtcAnswer{SDP: rs.answer, Type: "answer", SessionID: rs.conv.SessionID, AgentID: rs.conv.AgentID,
		Resumed: rs.resumed, Audio: rs.vs.outputSpec(), Input: in.spec()})
}

// rtcSession is one PeerConnection and the voice session it carries. run owns it: the
// pipeline, the event writer and the track readers are its goroutines, and it tears
// everything down when ctx ends.
type rtcSession struct {
	srv       *Server
	cfg       WebRTCConfig
	pc        *webrtc.PeerConnection
	vs        *voiceSession
	conv      agents.Conversation
	resumed   bool
	answer    string
	in        *rtcCodec                   // what the client sends; nil without audio
	out       *rtcCodec                   // what the gateway sends; nil for text only
	track     *webrtc.TrackLocalStaticRTP // the reply audio; nil for text only
	rateKey   string
	rateLimit Limit
	// wantChannel: the offer has a data channel section, so events wait for a channel to open.
	wantChannel bool
	leaveUser   func()

	ctx       context.Context // ends the session; its cause says why
	end       context.CancelCauseFunc
	connected chan struct{} // closed when the PeerConnection first connects
	connOnce  sync.Once
	wg        sync.WaitGroup

	mu           sync.Mutex
	closing      bool // no new track readers once set
	shuttingDown bool // the drain closed the pipeline and ends the session itself
	lastAudioErr map[string]time.Time

	// sendMu orders every frame on the data channel, and guards the fields below.
	sendMu  sync.Mutex
	dc      *webrtc.DataChannel // where events go, once open
	dcOwn   bool                // dc was opened by the gateway
	pending [][]byte            // frames waiting for a channel to open

	// RTP state of the reply track, used by the event writer only.
	rtpSeq    uint16
	rtpTS     uint32
	lastAudio time.Time
}

// Bounds of the events channel: frames waiting for the channel to open, and bytes the client
// has not acknowledged, beyond which it is considered gone (as a stalled WebSocket reader).
const (
	maxPendingEvents      = 1024
	maxBufferedEventBytes = 1 << 20
	// serverChannelGrace is how long after connecting the gateway waits for the client's
	// data channel before it opens its own (the client's opens within a round trip or two).
	serverChannelGrace = time.Second
	// talkSpurtGap is a pause in the reply audio long enough to be a silence rather than
	// ticker jitter: the RTP clock is moved on over it.
	talkSpurtGap = 100 * time.Millisecond
	// flushTimeout bounds the wait for a last frame (an error saying why the session ends) to
	// reach the client before the connection closes.
	flushTimeout = time.Second
)

var (
	errRTCConnectTimeout = errors.New("webrtc: the client did not connect in time")
	errRTCICEFailed      = errors.New("webrtc: ICE failed (the client went away)")
	errRTCPeerClosed     = errors.New("webrtc: the peer connection closed")
	errRTCChannelClosed  = errors.New("webrtc: the events data channel closed")
	errRTCShuttingDown   = errors.New("webrtc: the gateway is shutting down")
	errRTCEventsStalled  = errors.New("webrtc: the client stopped reading the events channel")
	errRTCNoChannel      = errors.New("webrtc: the session has no events channel")
)

// newRTCSession builds the PeerConnection, opens the conversation and its voice session, and
// negotiates the answer. On error everything it made is closed again.
func (s *Server) newRTCSession(c echo.Context, cfg WebRTCConfig, offer webrtcOffer, info offerInfo, opts voiceOptions, in, out *rtcCodec) (_ *rtcSession, err error) {
	r := c.Request()
	rs := &rtcSession{srv: s, cfg: cfg, in: in, out: out, wantChannel: info.application,
		connected: make(chan struct{}), lastAudioErr: map[string]time.Time{}}
	rs.rateKey, rs.rateLimit = s.rateLimitFor(r)
	_, plan := s.cfg.Identify(r)
	rs.ctx, rs.end = context.WithCancelCause(s.hardStop)
	defer func() {
		if err != nil {
			rs.end(err)
			if rs.pc != nil {
				_ = rs.pc.GracefulClose()
			}
			if rs.vs != nil {
				rs.vs.Close()
			}
			if rs.leaveUser != nil {
				rs.leaveUser()
			}
		}
	}()

	if rs.pc, err = newPeerConnection(cfg, in, out, s.log); err != nil {
		return nil, fmt.Errorf("webrtc: %w", err)
	}
	if err := rs.addAudio(); err != nil {
		return nil, err
	}
	rs.pc.OnConnectionStateChange(rs.onConnectionState)
	rs.pc.OnTrack(rs.onTrack)
	rs.pc.OnDataChannel(func(dc *webrtc.DataChannel) { rs.watchChannel(dc, false) })
	if err := rs.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer.SDP}); err != nil {
		return nil, &APIError{Status: http.StatusBadRequest, Code: CodeInvalidSDP, Message: "the offer cannot be used: " + err.Error(), cause: err}
	}

	ctx := r.Context()
	rs.conv = agents.Conversation{AgentID: offer.AgentID, SessionID: offer.SessionID, UserID: offer.UserID}
	sess, created, err := s.cfg.Engine.OpenSession(ctx, rs.conv)
	if err != nil {
		return nil, err
	}
	rs.conv.SessionID, rs.conv.UserID, rs.conv.AgentID = sess.ID, sess.UserID, sess.AgentID
	rs.resumed = !created
	if rs.vs, err = s.openVoiceSession(rs.conv, plan, opts, s.turnAdmission(rs.rateKey, rs.rateLimit)); err != nil {
		return nil, err
	}
	resumed := rs.resumed
	rs.sendFrame(serverFrame{Type: "session.started", SessionID: rs.conv.SessionID, AgentID: rs.conv.AgentID, Resumed: &resumed, Audio: rs.vs.outputSpec()})
	rs.leaveUser = s.users.add(rs.conv.UserID, rs)

	answer, err := rs.pc.CreateAnswer(nil)
	if err != nil {
		return nil, &APIError{Status: http.StatusBadRequest, Code: CodeInvalidSDP, Message: "the offer cannot be answered: " + err.Error(), cause: err}
	}
	gathered := webrtc.GatheringCompletePromise(rs.pc)
	if err := rs.pc.SetLocalDescription(answer); err != nil {
		return nil, fmt.Errorf("webrtc: set local description: %w", err)
	}
	gatherWait := time.NewTimer(cfg.GatherTimeout)
	defer gatherWait.Stop()
	select {
	case <-gathered:
	case <-gatherWait.C:
		s.log.Warn("webrtc: ICE gathering took too long; answering with the candidates found so far", "session", rs.conv.SessionID, "timeout", cfg.GatherTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	rs.answer = rs.pc.LocalDescription().SDP
	return rs, nil
}

// newPeerConnection makes a PeerConnection that speaks only the chosen codecs, gathers host
// candidates (loopback included) and the configured STUN/TURN ones, and has no interceptors:
// the audio is 20 ms packets that need no NACK or congestion control.
func newPeerConnection(cfg WebRTCConfig, in, out *rtcCodec, log *slog.Logger) (*webrtc.PeerConnection, error) {
	var media webrtc.MediaEngine
	for i, c := range []*rtcCodec{in, out} {
		if c == nil || (i == 1 && c == in) {
			continue
		}
		if err := media.RegisterCodec(c.params, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, fmt.Errorf("register %s: %w", c.params.MimeType, err)
		}
	}
	var settings webrtc.SettingEngine
	settings.SetIncludeLoopbackCandidate(true)
	settings.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	// A server has no use for mDNS: its candidates are IPs, and a browser hiding its own
	// behind .local names is reached through the peer-reflexive candidates its checks create.
	settings.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	settings.SetICETimeouts(cfg.DisconnectedTimeout, cfg.FailedTimeout, 2*time.Second)
	settings.SetSTUNGatherTimeout(cfg.GatherTimeout)
	if cfg.UDPPortMin != 0 || cfg.UDPPortMax != 0 {
		if err := settings.SetEphemeralUDPPortRange(cfg.UDPPortMin, cfg.UDPPortMax); err != nil {
			return nil, fmt.Errorf("udp port range %d-%d: %w", cfg.UDPPortMin, cfg.UDPPortMax, err)
		}
	}
	settings.LoggerFactory = pionLogs{log: log}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(&media), webrtc.WithSettingEngine(settings),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	servers := make([]webrtc.ICEServer, 0, len(cfg.ICEServers))
	for _, is := range cfg.ICEServers {
		ws := webrtc.ICEServer{URLs: is.URLs, Username: is.Username}
		if is.Credential != "" {
			ws.Credential = is.Credential
		}
		servers = append(servers, ws)
	}
	return api.NewPeerConnection(webrtc.Configuration{ICEServers: servers})
}

// addAudio adds the one audio transceiver: sendrecv with the reply track, or recvonly for
// text-only replies. The codec the gateway wants to receive is listed first in the answer.
func (rs *rtcSession) addAudio() error {
	if rs.in == nil {
		return nil
	}
	var tr *webrtc.RTPTransceiver
	var err error
	if rs.out != nil {
		rs.track, err = webrtc.NewTrackLocalStaticRTP(rs.out.params.RTPCodecCapability, "audio", "dartmouth")
		if err != nil {
			return fmt.Errorf("webrtc: reply track: %w", err)
		}
		tr, err = rs.pc.AddTransceiverFromTrack(rs.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
		rs.rtpSeq, rs.rtpTS = uint16(rand.Uint32()), rand.Uint32() // RFC 3550: random starts
	} else {
		tr, err = rs.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	}
	if err != nil {
		return fmt.Errorf("webrtc: audio transceiver: %w", err)
	}
	prefs := []webrtc.RTPCodecParameters{rtcPreference(rs.in)}
	if rs.out != nil && rs.out != rs.in {
		prefs = append(prefs, rtcPreference(rs.out))
	}
	if err := tr.SetCodecPreferences(prefs); err != nil {
		return fmt.Errorf("webrtc: codec preferences: %w", err)
	}
	return nil
}

// rtcPreference is a codec preference that takes the payload type the offer gave the codec
// (the transceiver fills in a zero one); PCMU's is 0 anyway.
func rtcPreference(c *rtcCodec) webrtc.RTPCodecParameters {
	p := c.params
	p.PayloadType = 0
	return p
}

func (rs *rtcSession) onConnectionState(state webrtc.PeerConnectionState) {
	switch state {
	case webrtc.PeerConnectionStateConnected:
		rs.connOnce.Do(func() { close(rs.connected) })
	case webrtc.PeerConnectionStateFailed:
		rs.end(errRTCICEFailed)
	case webrtc.PeerConnectionStateClosed:
		rs.end(errRTCPeerClosed)
	}
}

// run starts the pipeline and its event writer, watches the connection, and tears the
// session down when it ends.
func (rs *rtcSession) run() {
	s := rs.srv
	defer s.sockets.Done()
	rs.wg.Add(2)
	go func() {
		defer rs.wg.Done()
		rs.runPipeline()
	}()
	forwarded := make(chan struct{}) // the events are all sent: the pipeline has closed
	go func() {
		defer rs.wg.Done()
		defer close(forwarded)
		for ev := range rs.vs.Events() {
			rs.sendEvent(ev)
		}
	}()

	connectTimer := time.NewTimer(rs.cfg.ConnectTimeout)
	defer connectTimer.Stop()
	var channelTimer *time.Timer
	var channelWait <-chan time.Time
	defer func() {
		if channelTimer != nil {
			channelTimer.Stop()
		}
	}()
	connected, drain := rs.connected, s.drain
	for rs.ctx.Err() == nil {
		select {
		case <-rs.ctx.Done():
		case <-drain:
			// The reply in progress (or to speech just finished) is still played and its
			// events sent, as on the WebSocket; rs.ctx ends with the shutdown grace.
			// Closing the drained pipeline lets the forwarder send what it holds, so the
			// last reply's events come before the shutdown error.
			drain = nil
			rs.wg.Add(1)
			go func() {
				defer rs.wg.Done()
				_ = rs.vs.Drain(rs.ctx)
				rs.mu.Lock()
				rs.shuttingDown = true
				rs.mu.Unlock()
				rs.vs.Close()
				<-forwarded
				rs.sendError(CodeShuttingDown, "the gateway is shutting down; send a new offer with the sessionId to go on")
				rs.flush()
				rs.end(errRTCShuttingDown)
			}()
		case <-connectTimer.C:
			rs.end(errRTCConnectTimeout)
		case <-connected:
			connected = nil
			connectTimer.Stop()
			if rs.wantChannel && !rs.hasChannel() {
				channelTimer = time.NewTimer(serverChannelGrace)
				channelWait = channelTimer.C
			}
		case <-channelWait:
			channelWait = nil
			rs.openServerChannel()
		}
	}
	s.log.Debug("webrtc session ends", "session", rs.conv.SessionID, "reason", context.Cause(rs.ctx))

	rs.mu.Lock()
	rs.closing = true
	rs.mu.Unlock()
	rs.vs.Close()
	if err := rs.pc.GracefulClose(); err != nil {
		s.log.Debug("webrtc: close", "session", rs.conv.SessionID, "err", err)
	}
	rs.wg.Wait()
	rs.leaveUser()
}

// runPipeline runs the voice session and ends the connection with it.
func (rs *rtcSession) runPipeline() {
	err := rs.vs.Run(rs.ctx)
	switch {
	case errors.Is(err, errSessionExpired):
		rs.sendError(CodeSessionExpired, "the voice session reached its maximum duration; send a new offer with its sessionId to go on")
		rs.flush()
		rs.end(err)
	case errors.Is(err, voice.ErrEventsStalled):
		rs.end(err)
	case err != nil:
		rs.end(err)
	default: // closed by the teardown, whose cause is already set, or by the drain, which ends it
		rs.mu.Lock()
		draining := rs.shuttingDown
		rs.mu.Unlock()
		if !draining {
			rs.end(errRTCPeerClosed)
		}
	}
}

// onTrack reads the client's audio track into the pipeline, one RTP payload per Push.
func (rs *rtcSession) onTrack(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	rs.mu.Lock()
	if rs.closing || rs.in == nil || track.Kind() != webrtc.RTPCodecTypeAudio {
		rs.mu.Unlock()
		return
	}
	rs.wg.Add(1)
	rs.mu.Unlock()
	go func() {
		defer rs.wg.Done()
		rs.readTrack(track)
	}()
}

func (rs *rtcSession) readTrack(track *webrtc.TrackRemote) {
	if strings.EqualFold(strings.TrimSpace(rs.vs.opts.Tier), string(voice.TierNative)) {
		return // the device transcribes; its audio is not wanted
	}
	codec := track.Codec()
	if !strings.EqualFold(codec.MimeType, rs.in.params.MimeType) {
		rs.sendError(CodeBadAudio, fmt.Sprintf("the audio track is %s, but this session decodes %s, the first codec of the answer: send that",
			codec.MimeType, rs.in.params.MimeType))
		return
	}
	for {
		pkt, _, err := track.ReadRTP()
		if err != nil {
			return // the connection is closing
		}
		if pkt.PayloadType != uint8(codec.PayloadType) {
			continue // comfort noise or DTMF, not speech
		}
		if err := rs.vs.Push(pkt.Payload); err != nil {
			if toAPIError(err).Code == CodeSessionExpired {
				return
			}
			rs.reportAudioError(err)
		}
	}
}

// reportAudioError tells the client about a refused packet, at most once a second per code:
// a stream of bad packets must not become a stream of errors.
func (rs *rtcSession) reportAudioError(err error) {
	apiErr := toAPIError(err)
	rs.mu.Lock()
	now := time.Now()
	quiet := now.Sub(rs.lastAudioErr[apiErr.Code]) < time.Second
	if !quiet {
		rs.lastAudioErr[apiErr.Code] = now
	}
	rs.mu.Unlock()
	if !quiet {
		rs.sendError(apiErr.Code, apiErr.Message)
	}
}

func (rs *rtcSession) sendEvent(ev voice.Event) {
	if a, ok := ev.(voice.ResponseAudio); ok {
		rs.writeAudio(a)
		return
	}
	if f, ok := voiceEventFrame(ev); ok {
		rs.sendFrame(f)
	}
}

// writeAudio sends one 20 ms reply frame as one RTP packet. Over a pause between replies the
// RTP clock moves on with the wall clock and the marker bit starts the new talk spurt, as a
// DTX sender does, so the client's jitter buffer neither takes the next packet for a late one
// nor for a loss.
func (rs *rtcSession) writeAudio(a voice.ResponseAudio) {
	if rs.track == nil {
		return
	}
	ticks := uint32(rs.out.rate / 50)
	now := time.Now()
	marker := rs.lastAudio.IsZero()
	if gap := now.Sub(rs.lastAudio); !marker && gap > talkSpurtGap {
		rs.rtpTS += uint32(gap/voice.FrameDuration-1) * ticks
		marker = true
	}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: marker, SequenceNumber: rs.rtpSeq, Timestamp: rs.rtpTS}, Payload: a.Audio}
	rs.rtpSeq++
	rs.rtpTS += ticks
	rs.lastAudio = now
	if err := rs.track.WriteRTP(pkt); err != nil && rs.ctx.Err() == nil {
		rs.srv.log.Debug("webrtc: audio packet not sent", "session", rs.conv.SessionID, "err", err)
	}
}

// watchChannel takes a data channel, the client's or the gateway's own, for events and
// client frames.
func (rs *rtcSession) watchChannel(dc *webrtc.DataChannel, own bool) {
	dc.OnOpen(func() { rs.channelOpen(dc, own) })
	dc.OnMessage(func(msg webrtc.DataChannelMessage) { rs.handleMessage(msg) })
	dc.OnClose(func() {
		rs.sendMu.Lock()
		active := rs.dc == dc
		rs.sendMu.Unlock()
		if active {
			rs.end(errRTCChannelClosed)
		}
	})
}

// channelOpen makes dc the events channel, unless the client's is already: the client's
// wins over the gateway's, which is then closed.
func (rs *rtcSession) channelOpen(dc *webrtc.DataChannel, own bool) {
	rs.sendMu.Lock()
	var replaced *webrtc.DataChannel
	switch {
	case rs.dc == nil:
	case rs.dcOwn && !own:
		replaced = rs.dc
	default:
		rs.sendMu.Unlock()
		return // a second channel: frames it carries are heard, events stay on the first
	}
	rs.dc, rs.dcOwn = dc, own
	for _, p := range rs.pending {
		if err := dc.SendText(string(p)); err != nil {
			break
		}
	}
	rs.pending = nil
	rs.sendMu.Unlock()
	if replaced != nil {
		_ = replaced.Close()
	}
}

func (rs *rtcSession) hasChannel() bool {
	rs.sendMu.Lock()
	defer rs.sendMu.Unlock()
	return rs.dc != nil
}

// openServerChannel opens the gateway's "events" channel for a client that opened none.
func (rs *rtcSession) openServerChannel() {
	if rs.hasChannel() {
		return
	}
	dc, err := rs.pc.CreateDataChannel("events", nil)
	if err != nil {
		rs.srv.log.Debug("webrtc: cannot open the events channel", "session", rs.conv.SessionID, "err", err)
		return
	}
	rs.watchChannel(dc, true)
}

func (rs *rtcSession) sendFrame(f any) {
	payload, err := json.Marshal(f)
	if err != nil {
		rs.srv.log.Error("webrtc: frame not encodable", "err", err)
		return
	}
	_ = rs.sendPayload(payload)
}

func (rs *rtcSession) sendError(code, message string) {
	rs.sendFrame(serverFrame{Type: "error", Code: code, Message: message})
}

func (rs *rtcSession) sendAPIError(id string, err error) {
	apiErr := toAPIError(err)
	if apiErr.Status >= 500 {
		rs.srv.log.Error("webrtc session: request failed", "session", rs.conv.SessionID, "err", err)
	}
	rs.sendFrame(serverFrame{Type: "error", ID: id, Code: apiErr.Code, Message: apiErr.Message})
}

// sendPayload sends a frame on the events channel, or keeps it until the channel opens. A
// client that leaves too much unacknowledged has stopped reading, and the session ends.
func (rs *rtcSession) sendPayload(p []byte) error {
	rs.sendMu.Lock()
	defer rs.sendMu.Unlock()
	if rs.dc == nil {
		if !rs.wantChannel {
			return errRTCNoChannel
		}
		if len(rs.pending) >= maxPendingEvents {
			rs.end(errRTCEventsStalled)
			return errRTCEventsStalled
		}
		rs.pending = append(rs.pending, p)
		return nil
	}
	if rs.dc.BufferedAmount() > maxBufferedEventBytes {
		rs.end(errRTCEventsStalled)
		return errRTCEventsStalled
	}
	return rs.dc.SendText(string(p))
}

// pushEvent delivers an event pushed to the user (DeliverToUser) on the events channel.
func (rs *rtcSession) pushEvent(_ context.Context, payload []byte) error {
	return rs.sendPayload(payload)
}

var _ eventSink = (*rtcSession)(nil)

// flush waits, up to flushTimeout, until the client has acknowledged every frame sent, so a
// last error reaches it before the connection closes.
func (rs *rtcSession) flush() {
	rs.sendMu.Lock()
	dc := rs.dc
	rs.sendMu.Unlock()
	if dc == nil {
		return
	}
	drained := make(chan struct{}, 1)
	dc.SetBufferedAmountLowThreshold(0)
	dc.OnBufferedAmountLow(func() {
		select {
		case drained <- struct{}{}:
		default:
		}
	})
	if dc.BufferedAmount() == 0 {
		return
	}
	timer := time.NewTimer(flushTimeout)
	defer timer.Stop()
	select {
	case <-drained:
	case <-timer.C:
	case <-rs.srv.hardStop.Done():
	}
}

// handleMessage answers a client frame on a data channel: the WebSocket's voice frames.
func (rs *rtcSession) handleMessage(msg webrtc.DataChannelMessage) {
	if !msg.IsString {
		rs.sendError(CodeUnsupportedFrame, "the data channel takes JSON text frames; audio goes on the audio track")
		return
	}
	if limit := rs.srv.cfg.WSMaxFrameBytes; int64(len(msg.Data)) > limit {
		rs.sendError(CodeFrameTooLarge, "frame is over the limit of "+itoa(limit)+" bytes")
		return
	}
	var f clientFrame
	if err := json.Unmarshal(msg.Data, &f); err != nil {
		rs.sendError(CodeInvalidJSON, "malformed JSON frame: "+err.Error())
		return
	}
	switch f.Type {
	case "ping":
		rs.sendFrame(serverFrame{Type: "pong", ID: f.ID})
	case "text":
		if admit := rs.srv.turnAdmission(rs.rateKey, rs.rateLimit); admit != nil {
			if err := admit(rs.ctx); err != nil {
				rs.sendAPIError(f.ID, err)
				return
			}
		}
		if err := rs.vs.PushText(f.Text); err != nil {
			rs.sendAPIError(f.ID, err)
		}
	case "interrupt":
		rs.vs.Interrupt()
	case "audio.end":
		if !rs.vs.Commit() {
			rs.sendFrame(serverFrame{Type: "error", ID: f.ID, Code: CodeNoSpeech, Message: "audio.end: no speech was heard since the last turn"})
		}
	case "session.start":
		rs.sendFrame(serverFrame{Type: "error", ID: f.ID, Code: CodeAlreadyStarted, Message: "the offer started this session; send a new offer for another one"})
	case "":
		rs.sendFrame(serverFrame{Type: "error", ID: f.ID, Code: CodeValidation, Message: "frame has no type"})
	default:
		rs.sendFrame(serverFrame{Type: "error", ID: f.ID, Code: CodeUnknownType, Message: "unknown frame type " + strconvQuote(f.Type)})
	}
}

// pionLogs sends pion's logs to the gateway's logger, all at debug: pion reports the routine
// end of every connection at warn and error level ("stream is already closed", "conn is
// closed", a ping before the first candidate pair), and the gateway says itself why each
// session ended.
type pionLogs struct{ log *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("component", "pion/"+scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) logf(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, args...))
	}
}

func (l pionLogger) Trace(string)                      {}
func (l pionLogger) Tracef(string, ...any)             {}
func (l pionLogger) Debug(msg string)                  { l.logf("%s", msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.logf(format, args...) }
func (l pionLogger) Info(msg string)                   { l.logf("%s", msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.logf(format, args...) }
func (l pionLogger) Warn(msg string)                   { l.logf("warning: %s", msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.logf("warning: "+format, args...) }
func (l pionLogger) Error(msg string)                  { l.logf("error: %s", msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.logf("error: "+format, args...) }

var _ logging.LoggerFactory = pionLogs{}
