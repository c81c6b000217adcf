package gateway_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"iter"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/voice"
	"github.com/openai/openai-go/v3"
	oaioption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/realtime"
)

// fixedReply is a provider that streams the same reply, chunk by chunk, to every request.
type fixedReply []string

func (fixedReply) Name() string { return "fixed" }

func (r fixedReply) Stream(ctx context.Context, _ llm.Request) iter.Seq2[llm.Chunk, error] {
	return func(yield func(llm.Chunk, error) bool) {
		for _, text := range r {
			if ctx.Err() != nil {
				yield(llm.Chunk{}, ctx.Err())
				return
			}
			if !yield(llm.Chunk{Text: text, Provider: "fixed", Model: "fixed-1"}, nil) {
				return
			}
		}
		yield(llm.Chunk{Provider: "fixed", Model: "fixed-1", Usage: &llm.Usage{InputTokens: 12, OutputTokens: 6}}, nil)
	}
}

var twoSentences = fixedReply{"First sentence ", "here. Second sentence", " there."}

// realtimeGateway serves /v1/realtime with a fake router that transcribes at once ("heard
// <duration>") and speaks every sentence for sentence long; clients may send audio as fast as
// they like.
func realtimeGateway(t *testing.T, provider llm.Provider, sentence time.Duration, opts ...option) *testGateway {
	t.Helper()
	fake := &voiceFake{tier: voice.TierLocal, name: "local-fake", speechLen: sentence}
	router, err := voice.NewRouter(voice.RouterConfig{TTS: []voice.TTS{fake}, STT: []voice.STT{fake}})
	if err != nil {
		t.Fatal(err)
	}
	return startGateway(t, provider, append([]option{func(c *gateway.Config) {
		c.Voice = router
		c.VoiceSessions.AudioRateFactor = 1000
	}}, opts...)...)
}

// rtEvent is a server event as the test reads it.
type rtEvent map[string]any

func (e rtEvent) str(path ...string) string {
	v, _ := e.get(path...).(string)
	return v
}

func (e rtEvent) num(path ...string) float64 {
	v, _ := e.get(path...).(float64)
	return v
}

func (e rtEvent) get(path ...string) any {
	var v any = map[string]any(e)
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// rtClient speaks the Realtime events over a plain WebSocket, reading synchronously.
type rtClient struct {
	t    *testing.T
	conn *websocket.Conn
	log  []rtEvent // every event read, in order
}

func realtimeURL(g *testGateway, query string) string {
	return "ws" + strings.TrimPrefix(g.URL, "http") + "/v1/realtime?" + query
}

func dialRealtime(t *testing.T, g *testGateway, query string) *rtClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, realtimeURL(g, query), nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	conn.SetReadLimit(1 << 20)
	t.Cleanup(func() { conn.CloseNow() })
	c := &rtClient{t: t, conn: conn}
	if ev := c.next(); ev.str("type") != "session.created" {
		t.Fatalf("first event %v, want session.created", ev)
	}
	return c
}

func (c *rtClient) send(ev map[string]any) {
	c.t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(websocket.MessageText, b)
}

func (c *rtClient) sendRaw(typ websocket.MessageType, b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, typ, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *rtClient) next() rtEvent {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := c.conn.Read(ctx)
	if err != nil {
		c.t.Fatalf("read (after %v): %v", c.types(), err)
	}
	var ev rtEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		c.t.Fatalf("event is not JSON: %s", b)
	}
	if !strings.HasPrefix(ev.str("event_id"), "event_") {
		c.t.Fatalf("event without an event_id: %s", b)
	}
	c.log = append(c.log, ev)
	return ev
}

// until reads up to the first event of the type and returns it.
func (c *rtClient) until(typ string) rtEvent {
	c.t.Helper()
	for {
		if ev := c.next(); ev.str("type") == typ {
			return ev
		}
	}
}

// types lists the types of the events read so far, audio and transcript deltas collapsed.
func (c *rtClient) types() []string {
	var out []string
	for _, ev := range c.log {
		typ := ev.str("type")
		if len(out) > 0 && out[len(out)-1] == typ && strings.HasSuffix(typ, ".delta") {
			continue
		}
		out = append(out, typ)
	}
	return out
}

func (c *rtClient) expectError(code string) rtEvent {
	c.t.Helper()
	ev := c.until("error")
	if ev.str("error", "code") != code || ev.str("error", "message") == "" {
		c.t.Fatalf("want error %s, got %v", code, ev)
	}
	return ev
}

func (c *rtClient) append(pcm []int16) {
	c.t.Helper()
	for i := 0; i < len(pcm); i += 2400 { // 100 ms events
		c.send(map[string]any{"type": "input_audio_buffer.append", "audio": base64.StdEncoding.EncodeToString(pcm16LE(pcm[i:min(i+2400, len(pcm))]))})
	}
}

// Audio at 24 kHz: a faint room, then a tone the VAD takes for a voice.
func room24(ms int) []int16 {
	out := make([]int16, 24*ms)
	seed := uint32(11)
	for i := range out {
		seed = seed*1664525 + 1013904223
		out[i] = int16(int32(seed>>16)%64 - 32)
	}
	return out
}

func voice24(ms int) []int16 {
	out := make([]int16, 24*ms)
	for i := range out {
		out[i] = int16(8000 * math.Sin(2*math.Pi*220*float64(i)/24000))
	}
	return out
}

func pcm16LE(s []int16) []byte {
	b := make([]byte, 2*len(s))
	for i, v := range s {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}

// utterance is an utterance as a client streams it: room, speech, then silence long enough
// for server VAD to end the turn.
func utterance() []int16 {
	return slices.Concat(room24(300), voice24(600), room24(900))
}

// subsequence reports whether want appears in got in order.
func subsequence(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

func storedMessages(t *testing.T, g *testGateway, user, sessionID string) []string {
	t.Helper()
	msgs, err := g.Store.ListMessages(context.Background(), user, sessionID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, m.Role+": "+m.Content)
	}
	return out
}

// TestRealtimeServerVADTurn: speech then silence, with server VAD, gets the documented event
// sequence, with consistent item ids, 24 kHz PCM16 audio deltas, and the turn stored.
func TestRealtimeServerVADTurn(t *testing.T) {
	g := realtimeGateway(t, twoSentences, 100*time.Millisecond)
	c := dialRealtime(t, g, "model=passthrough&user_id=vad-user")
	sid := c.log[0].str("session", "id")
	if c.log[0].get("session", "audio", "input", "turn_detection", "type") != "server_vad" ||
		c.log[0].num("session", "audio", "output", "format", "rate") != 24000 {
		t.Fatalf("session.created %v", c.log[0])
	}
	c.append(utterance())
	done := c.until("response.done")
	want := []string{
		"input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped", "input_audio_buffer.committed",
		"conversation.item.added", "conversation.item.input_audio_transcription.completed", "conversation.item.done",
		"response.created", "response.output_item.added", "conversation.item.added", "response.content_part.added",
		"response.output_audio_transcript.delta", "response.output_audio.delta",
		"response.output_audio.done", "response.output_audio_transcript.done", "response.content_part.done",
		"response.output_item.done", "conversation.item.done", "response.done",
	}
	if got := c.types(); !subsequence(got, want) {
		t.Fatalf("events %v\nwant in order %v", got, want)
	}
	byType := map[string]rtEvent{}
	var audio []byte
	var transcript strings.Builder
	for _, ev := range c.log {
		switch typ := ev.str("type"); typ {
		case "response.output_audio.delta":
			b, err := base64.StdEncoding.DecodeString(ev.str("delta"))
			if err != nil || len(b) != 960 {
				t.Fatalf("audio delta of %d bytes (%v), want 20 ms of 24 kHz PCM16", len(b), err)
			}
			audio = append(audio, b...)
		case "response.output_audio_transcript.delta":
			transcript.WriteString(ev.str("delta"))
		default:
			if _, seen := byType[typ]; !seen {
				byType[typ] = ev
			}
		}
	}
	item := byType["input_audio_buffer.speech_started"].str("item_id")
	for _, typ := range []string{"input_audio_buffer.speech_stopped", "input_audio_buffer.committed", "conversation.item.input_audio_transcription.completed"} {
		if byType[typ].str("item_id") != item || !strings.HasPrefix(item, "item_") {
			t.Errorf("%s names item %q, want the speech's %q", typ, byType[typ].str("item_id"), item)
		}
	}
	started := byType["input_audio_buffer.speech_started"].num("audio_start_ms")
	stopped := byType["input_audio_buffer.speech_stopped"].num("audio_end_ms")
	if started < 0 || started > 300 || stopped < 850 || stopped > 950 {
		t.Errorf("speech from %v ms to %v ms, want about 0-300 to 900", started, stopped)
	}
	heard := byType["conversation.item.input_audio_transcription.completed"].str("transcript")
	if !strings.HasPrefix(heard, "heard ") {
		t.Errorf("transcript %q", heard)
	}
	resp := done.get("response").(map[string]any)
	if !strings.HasPrefix(resp["id"].(string), "resp_") || resp["status"] != "completed" || resp["id"] != byType["response.created"].str("response", "id") {
		t.Errorf("response.done %v", resp)
	}
	if done.num("response", "usage", "output_tokens") != 6 || done.num("response", "usage", "input_tokens") != 12 {
		t.Errorf("usage %v", done.get("response", "usage"))
	}
	if transcript.String() != "First sentence here. Second sentence there." ||
		byType["response.output_audio_transcript.done"].str("transcript") != transcript.String() {
		t.Errorf("reply transcript %q", transcript.String())
	}
	if len(audio) < 2*2*2400 || rmsDBFS(pcm16(audio)) < -30 {
		t.Errorf("reply audio: %d bytes at %.0f dBFS, want two sentences of tone", len(audio), rmsDBFS(pcm16(audio)))
	}
	if got := storedMessages(t, g, "vad-user", sid); !slices.Equal(got, []string{"user: " + heard, "assistant: " + transcript.String()}) {
		t.Errorf("stored %q", got)
	}
}

func pcm16(b []byte) []int16 {
	out := make([]int16, len(b)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

// TestRealtimeBargeIn: speech while a reply plays ends it with response.done cancelled
// (turn_detected) after speech_started, and the new utterance is answered.
func TestRealtimeBargeIn(t *testing.T) {
	g := realtimeGateway(t, twoSentences, 5*time.Second)
	c := dialRealtime(t, g, "model=passthrough")
	c.append(utterance())
	first := c.until("response.output_audio.delta").str("response_id")
	c.append(slices.Concat(voice24(400), room24(900)))
	barge := c.until("input_audio_buffer.speech_started")
	done := c.until("response.done")
	if done.str("response", "id") != first || done.str("response", "status") != "cancelled" ||
		done.str("response", "status_details", "reason") != "turn_detected" {
		t.Fatalf("response.done %v, want %s cancelled by turn_detected", done, first)
	}
	if c.until("input_audio_buffer.committed").str("item_id") != barge.str("item_id") {
		t.Error("the barge-in's item is not the one committed")
	}
	if next := c.until("response.created"); next.str("response", "id") == first {
		t.Error("the barge-in was not answered with a new response")
	}
}

// TestRealtimeManualCommit: with turn_detection null the client commits, no VAD events are
// sent, an empty commit is an error, and the answer waits for response.create (which may come
// before the transcript).
func TestRealtimeManualCommit(t *testing.T) {
	g := realtimeGateway(t, twoSentences, 100*time.Millisecond)
	c := dialRealtime(t, g, "model=passthrough")
	c.send(map[string]any{"type": "session.update", "session": map[string]any{"type": "realtime", "audio": map[string]any{"input": map[string]any{"turn_detection": nil}}}})
	if upd := c.until("session.updated"); upd.get("session", "audio", "input", "turn_detection") != nil {
		t.Fatalf("turn detection still on: %v", upd)
	}
	c.send(map[string]any{"type": "input_audio_buffer.commit", "event_id": "c0"})
	if ev := c.expectError(gateway.CodeCommitEmpty); ev.str("error", "event_id") != "c0" || ev.str("error", "type") != "invalid_request_error" {
		t.Fatalf("empty commit: %v", ev)
	}
	c.append(utterance()) // its silence does not end the turn: only commit does
	c.send(map[string]any{"type": "input_audio_buffer.commit"})
	committed := c.until("input_audio_buffer.committed")
	tr := c.until("conversation.item.input_audio_transcription.completed")
	if tr.str("item_id") != committed.str("item_id") {
		t.Fatalf("transcript of %s, committed %s", tr.str("item_id"), committed.str("item_id"))
	}
	// Nothing is answered until asked: an unknown event's error comes back before any response.
	c.send(map[string]any{"type": "probe"})
	c.expectError(gateway.CodeUnknownType)
	if got := c.types(); slices.Contains(got, "response.created") || slices.Contains(got, "input_audio_buffer.speech_started") {
		t.Fatalf("before response.create: %v", got)
	}
	c.send(map[string]any{"type": "response.create"})
	if done := c.until("response.done"); done.str("response", "status") != "completed" {
		t.Fatalf("response.done %v", done)
	}
	// Commit and response.create at once: the request waits for the transcript.
	c.append(slices.Concat(room24(200), voice24(500)))
	c.send(map[string]any{"type": "input_audio_buffer.commit"})
	c.send(map[string]any{"type": "response.create"})
	if done := c.until("response.done"); done.str("response", "status") != "completed" {
		t.Fatalf("second turn %v", done)
	}
	c.send(map[string]any{"type": "response.create"})
	c.expectError(gateway.CodeNothingToAnswer)
}

// TestRealtimeThroughOpenAISDK: openai-go's own Realtime client, with its event types both
// ways, holds a voice turn (server VAD) and a text turn.
func TestRealtimeThroughOpenAISDK(t *testing.T) {
	g := realtimeGateway(t, twoSentences, 100*time.Millisecond)
	client := openai.NewClient(oaioption.WithBaseURL(g.URL+"/v1/"), oaioption.WithAPIKey("unused"), oaioption.WithMaxRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := client.Realtime.Connect(ctx, realtime.RealtimeConnectionOptions{}, oaioption.WithQuery("model", "passthrough"),
		oaioption.WithQuery("user_id", "sdk-user"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	recv := func(want string) realtime.RealtimeServerEventUnion {
		t.Helper()
		for {
			ev, err := conn.Recv(ctx)
			if err != nil {
				t.Fatalf("waiting for %s: %v", want, err)
			}
			if ev.Type == want {
				return ev
			}
			if ev.Type == "error" {
				t.Fatalf("error while waiting for %s: %s", want, ev.RawJSON())
			}
		}
	}
	created := recv("session.created").AsSessionCreatedEvent().Session.AsRealtimeSessionCreateRequest()
	if created.Audio.Input.Format.Rate != 24000 || created.Audio.Input.TurnDetection.Type != "server_vad" || created.Model == "" {
		t.Fatalf("session.created %+v", created)
	}
	update := realtime.RealtimeClientEventUnionParam{OfSessionUpdate: &realtime.SessionUpdateEventParam{
		Session: realtime.SessionUpdateEventSessionUnionParam{OfRealtime: &realtime.RealtimeSessionCreateRequestParam{
			OutputModalities: []string{"audio"},
			Audio: realtime.RealtimeAudioConfigParam{
				Input: realtime.RealtimeAudioConfigInputParam{
					Format: realtime.RealtimeAudioFormatsUnionParam{OfAudioPCM: &realtime.RealtimeAudioFormatsAudioPCMParam{Type: "audio/pcm", Rate: 24000}},
					TurnDetection: realtime.RealtimeAudioInputTurnDetectionUnionParam{OfServerVad: &realtime.RealtimeAudioInputTurnDetectionServerVadParam{
						SilenceDurationMs: openai.Int(400), PrefixPaddingMs: openai.Int(200), Threshold: openai.Float(0.5)}},
				},
				Output: realtime.RealtimeAudioConfigOutputParam{Format: realtime.RealtimeAudioFormatsUnionParam{OfAudioPCMU: &realtime.RealtimeAudioFormatsAudioPCMUParam{Type: "audio/pcmu"}}},
			},
		}},
	}}
	if err := conn.Send(ctx, update); err != nil {
		t.Fatal(err)
	}
	updated := recv("session.updated").AsSessionUpdatedEvent().Session.AsRealtimeSessionCreateRequest()
	if vad := updated.Audio.Input.TurnDetection.AsRealtimeAudioInputTurnDetectionServerVad(); vad.SilenceDurationMs != 400 || vad.PrefixPaddingMs != 200 || !vad.CreateResponse || !vad.InterruptResponse ||
		updated.Audio.Output.Format.Type != "audio/pcmu" {
		t.Fatalf("session.updated %s", updated.RawJSON())
	}

	pcm := utterance()
	for i := 0; i < len(pcm); i += 2400 {
		if err := conn.Send(ctx, realtime.RealtimeClientEventUnionParam{OfInputAudioBufferAppend: &realtime.InputAudioBufferAppendEventParam{
			Audio: base64.StdEncoding.EncodeToString(pcm16LE(pcm[i:min(i+2400, len(pcm))]))}}); err != nil {
			t.Fatal(err)
		}
	}
	speech := recv("input_audio_buffer.speech_started").AsInputAudioBufferSpeechStartedEvent()
	committed := recv("input_audio_buffer.committed").AsInputAudioBufferCommittedEvent()
	transcript := recv("conversation.item.input_audio_transcription.completed").AsConversationItemInputAudioTranscriptionCompletedEvent()
	if committed.ItemID != speech.ItemID || transcript.ItemID != speech.ItemID || !strings.HasPrefix(transcript.Transcript, "heard ") {
		t.Fatalf("speech %s, committed %s, transcript %+v", speech.ItemID, committed.ItemID, transcript)
	}
	respCreated := recv("response.created").AsResponseCreatedEvent()
	audioDelta := recv("response.output_audio.delta").AsResponseAudioDeltaEvent()
	if ulaw, err := base64.StdEncoding.DecodeString(audioDelta.Delta); err != nil || len(ulaw) != 160 || audioDelta.ResponseID != respCreated.Response.ID {
		t.Fatalf("audio delta: %d bytes of G.711 (%v), response %s", len(ulaw), err, audioDelta.ResponseID)
	}
	done := recv("response.done").AsResponseDoneEvent()
	if done.Response.ID != respCreated.Response.ID || done.Response.Status != "completed" || done.Response.Usage.OutputTokens != 6 ||
		len(done.Response.Output) != 1 || done.Response.Output[0].Type != "message" ||
		!slices.Equal(assistantTranscripts(done.Response.Output[0]), []string{"First sentence here. Second sentence there."}) {
		t.Fatalf("response.done %s", done.RawJSON())
	}

	// A typed text turn.
	if err := conn.Send(ctx, realtime.RealtimeClientEventUnionParam{OfConversationItemCreate: &realtime.ConversationItemCreateEventParam{
		Item: realtime.ConversationItemUnionParam{OfRealtimeUserMessageItem: &realtime.RealtimeConversationItemUserMessageParam{
			Content: []realtime.RealtimeConversationItemUserMessageContentParam{{Type: "input_text", Text: openai.String("And then?")}}}},
	}}); err != nil {
		t.Fatal(err)
	}
	added := recv("conversation.item.added").AsConversationItemAdded()
	if user := added.Item.AsRealtimeConversationItemUserMessage(); user.Role != "user" || len(user.Content) != 1 || user.Content[0].Text != "And then?" ||
		added.PreviousItemID != done.Response.Output[0].AsRealtimeConversationItemAssistantMessage().ID {
		t.Fatalf("conversation.item.added %s", added.RawJSON())
	}
	if err := conn.Send(ctx, realtime.RealtimeClientEventUnionParam{OfResponseCreate: &realtime.ResponseCreateEventParam{}}); err != nil {
		t.Fatal(err)
	}
	if done := recv("response.done").AsResponseDoneEvent(); done.Response.Status != "completed" {
		t.Fatalf("text turn %s", done.RawJSON())
	}
	msgs := storedMessages(t, g, "sdk-user", updatedSessionID(t, created.RawJSON()))
	if len(msgs) != 4 || msgs[2] != "user: And then?" {
		t.Fatalf("stored %q", msgs)
	}
}

func assistantTranscripts(item realtime.ConversationItemUnion) []string {
	msg := item.AsRealtimeConversationItemAssistantMessage()
	if msg.Role != "assistant" {
		return nil
	}
	var out []string
	for _, c := range msg.Content {
		out = append(out, c.Transcript)
	}
	return out
}

func updatedSessionID(t *testing.T, raw string) string {
	t.Helper()
	var s struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(raw), &s); err != nil || !strings.HasPrefix(s.ID, "ses_") {
		t.Fatalf("session id in %s: %v", raw, err)
	}
	return s.ID
}

// TestRealtimeTextTurnAndCancel: a user text item answered in text, then a response cancelled
// mid-stream ends with response.done cancelled and stops the model.
func TestRealtimeTextTurnAndCancel(t *testing.T) {
	llmScript := newScripted()
	g := realtimeGateway(t, llmScript, 100*time.Millisecond)
	c := dialRealtime(t, g, "model=passthrough&user_id=text-user")
	sid := c.log[0].str("session", "id")
	c.send(map[string]any{"type": "session.update", "session": map[string]any{"type": "realtime", "output_modalities": []string{"text"}}})
	if upd := c.until("session.updated"); upd.get("session", "output_modalities").([]any)[0] != "text" {
		t.Fatalf("session.updated %v", upd)
	}
	c.send(map[string]any{"type": "conversation.item.create", "item": map[string]any{"type": "message", "role": "user",
		"content": []any{map[string]any{"type": "input_text", "text": "Tell me a story."}}}})
	item := c.until("conversation.item.added")
	c.until("conversation.item.done")
	if content, _ := item.get("item", "content").([]any); len(content) != 1 || item.str("item", "role") != "user" ||
		content[0].(map[string]any)["text"] != "Tell me a story." {
		t.Fatalf("item %v", item)
	}
	c.send(map[string]any{"type": "response.create"})
	created := c.until("response.created")
	within(t, llmScript.started, "the model call")
	llmScript.steps <- "Once upon a time."
	if d := c.until("response.output_text.delta"); d.str("delta") != "Once upon a time." || d.str("response_id") != created.str("response", "id") {
		t.Fatalf("text delta %v", d)
	}
	llmScript.steps <- " The end."
	close(llmScript.steps)
	done := c.until("response.done")
	if done.str("response", "status") != "completed" {
		t.Fatalf("response.done %v", done)
	}
	if !slices.Contains(c.types(), "response.output_text.done") || slices.Contains(c.types(), "response.output_audio.delta") {
		t.Fatalf("a text session got %v", c.types())
	}

	// Cancel a second reply mid-stream.
	llmScript.steps = make(chan string)
	c.send(map[string]any{"type": "conversation.item.create", "item": map[string]any{"type": "message", "role": "user",
		"content": []any{map[string]any{"type": "input_text", "text": "Another one."}}}})
	c.send(map[string]any{"type": "response.create"})
	second := c.until("response.created").str("response", "id")
	within(t, llmScript.started, "the second model call")
	llmScript.steps <- "Long ago"
	c.until("response.output_text.delta")
	c.send(map[string]any{"type": "response.create"})
	c.expectError(gateway.CodeActiveResponse)
	c.send(map[string]any{"type": "response.cancel", "response_id": "resp_other"})
	c.expectError(gateway.CodeNoActiveResponse)
	c.send(map[string]any{"type": "response.cancel", "response_id": second})
	cancelled := c.until("response.done")
	if cancelled.str("response", "id") != second || cancelled.str("response", "status") != "cancelled" ||
		cancelled.str("response", "status_details", "reason") != "client_cancelled" {
		t.Fatalf("response.done %v", cancelled)
	}
	within(t, llmScript.cancelled, "the model call to be cancelled")
	// openai-go's types read the cancelled response (status_details is an object on the wire).
	raw, _ := json.Marshal(cancelled)
	var typed realtime.RealtimeServerEventUnion
	if err := json.Unmarshal(raw, &typed); err != nil || typed.AsResponseDoneEvent().Response.Status != realtime.RealtimeResponseStatusCancelled ||
		typed.AsResponseDoneEvent().Response.ID != second {
		t.Fatalf("openai-go reads %s as %+v (%v)", raw, typed.AsResponseDoneEvent().Response, err)
	}
	c.send(map[string]any{"type": "response.cancel"})
	c.expectError(gateway.CodeNoActiveResponse)
	if got := storedMessages(t, g, "text-user", sid); len(got) < 3 || got[0] != "user: Tell me a story." || got[1] != "assistant: Once upon a time. The end." {
		t.Fatalf("stored %q", got)
	}
}

// TestRealtimeTruncate: conversation.item.truncate cuts the stored reply to the sentences the
// client played (sentence boundaries from the synthesized audio), and bad truncations are
// refused.
func TestRealtimeTruncate(t *testing.T) {
	g := realtimeGateway(t, twoSentences, 200*time.Millisecond) // each sentence: 200 ms of audio
	c := dialRealtime(t, g, "model=passthrough&user_id=cut-user")
	sid := c.log[0].str("session", "id")
	c.send(map[string]any{"type": "conversation.item.create", "item": map[string]any{"type": "message", "role": "user",
		"content": []any{map[string]any{"type": "input_text", "text": "Two sentences, please."}}}})
	c.send(map[string]any{"type": "response.create"})
	done := c.until("response.done")
	itemID := done.get("response", "output").([]any)[0].(map[string]any)["id"].(string)
	reply := func() string {
		msgs := storedMessages(t, g, "cut-user", sid)
		return msgs[len(msgs)-1]
	}
	if reply() != "assistant: First sentence here. Second sentence there." {
		t.Fatalf("stored %q", reply())
	}
	for _, tc := range []struct {
		endMs int64
		want  string
	}{
		{300, "First sentence here. Second"}, // half of the second sentence's three words
		{200, "First sentence here."},
		{400, "First sentence here. Second sentence there."},
		{0, ""},
	} {
		c.send(map[string]any{"type": "conversation.item.truncate", "item_id": itemID, "content_index": 0, "audio_end_ms": tc.endMs})
		ev := c.until("conversation.item.truncated")
		if ev.str("item_id") != itemID || int64(ev.num("audio_end_ms")) != tc.endMs {
			t.Fatalf("truncated %v", ev)
		}
		if got := reply(); got != "assistant: "+tc.want {
			t.Errorf("after truncating at %d ms the reply is %q, want %q", tc.endMs, got, tc.want)
		}
	}
	for _, bad := range []struct {
		ev   map[string]any
		code string
	}{
		{map[string]any{"item_id": itemID, "content_index": 0, "audio_end_ms": 5000}, gateway.CodeValidation},
		{map[string]any{"item_id": itemID, "content_index": 1, "audio_end_ms": 100}, gateway.CodeValidation},
		{map[string]any{"item_id": "item_nope", "content_index": 0, "audio_end_ms": 100}, gateway.CodeItemNotFound},
	} {
		bad.ev["type"] = "conversation.item.truncate"
		c.send(bad.ev)
		c.expectError(bad.code)
	}
}

// TestRealtimeBadInput: malformed or unsupported events, bad audio and oversized frames each
// get an error event (invalid_request_error) and the connection stays usable, except for the
// oversized frame, which closes it with 1009.
func TestRealtimeBadInput(t *testing.T) {
	g := realtimeGateway(t, twoSentences, 100*time.Millisecond, func(c *gateway.Config) { c.WSMaxFrameBytes = 32 << 10 })
	c := dialRealtime(t, g, "model=fam")
	wav := toneWAV(100)
	for _, tc := range []struct {
		name  string
		raw   string
		code  string
		param string
	}{
		{"malformed JSON", `{"type":`, gateway.CodeInvalidJSON, ""},
		{"unknown type", `{"type":"session.destroy","event_id":"e1"}`, gateway.CodeUnknownType, ""},
		{"no type", `{"event_id":"e2"}`, gateway.CodeValidation, ""},
		{"wrong field type", `{"type":"input_audio_buffer.append","audio":5}`, gateway.CodeValidation, ""},
		{"bad base64", `{"type":"input_audio_buffer.append","audio":"not base64!"}`, gateway.CodeBadAudio, "audio"},
		{"no audio", `{"type":"input_audio_buffer.append"}`, gateway.CodeValidation, "audio"},
		{"a WAV file as raw PCM", `{"type":"input_audio_buffer.append","audio":"` + base64.StdEncoding.EncodeToString(wav) + `"}`, gateway.CodeBadAudio, ""},
		{"half a sample", `{"type":"input_audio_buffer.append","audio":"AAAA"}`, gateway.CodeBadAudio, ""},
		{"bad input format", `{"type":"session.update","session":{"audio":{"input":{"format":{"type":"audio/flac"}}}}}`, gateway.CodeValidation, "session.audio.input.format.type"},
		{"pcm at 16 kHz", `{"type":"session.update","session":{"audio":{"input":{"format":{"type":"audio/pcm","rate":16000}}}}}`, gateway.CodeValidation, "session.audio.input.format.rate"},
		{"beta field", `{"type":"session.update","session":{"input_audio_format":"pcm16"}}`, gateway.CodeValidation, "session.input_audio_format"},
		{"tools", `{"type":"session.update","session":{"tools":[{"type":"function","name":"f"}]}}`, gateway.CodeUnsupportedFeature, "session.tools"},
		{"bad threshold", `{"type":"session.update","session":{"audio":{"input":{"turn_detection":{"type":"server_vad","threshold":3}}}}}`, gateway.CodeValidation, "session.audio.input.turn_detection.threshold"},
		{"transcription session", `{"type":"session.update","session":{"type":"transcription"}}`, gateway.CodeUnsupportedFeature, "session.type"},
		{"assistant item", `{"type":"conversation.item.create","item":{"type":"message","role":"assistant","content":[{"type":"output_text","text":"hi"}]}}`, gateway.CodeUnsupportedFeature, "item"},
		{"nothing to answer", `{"type":"response.create"}`, gateway.CodeNothingToAnswer, ""},
		{"cancel without a response", `{"type":"response.cancel"}`, gateway.CodeNoActiveResponse, ""},
		{"empty commit", `{"type":"input_audio_buffer.commit"}`, gateway.CodeCommitEmpty, ""},
		{"unsupported event", `{"type":"conversation.item.delete","item_id":"x"}`, gateway.CodeUnsupportedFeature, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			c.sendRaw(websocket.MessageText, []byte(tc.raw))
			ev := c.expectError(tc.code)
			if ev.str("error", "type") != "invalid_request_error" || (tc.param != "" && ev.str("error", "param") != tc.param) {
				t.Fatalf("error %v, want type invalid_request_error, param %q", ev.get("error"), tc.param)
			}
			var sent struct {
				EventID string `json:"event_id"`
			}
			if json.Unmarshal([]byte(tc.raw), &sent) == nil && sent.EventID != "" && ev.str("error", "event_id") != sent.EventID {
				t.Fatalf("error names event %q, want %q", ev.str("error", "event_id"), sent.EventID)
			}
		})
	}
	c.t = t
	c.sendRaw(websocket.MessageBinary, []byte{1, 2, 3, 4})
	c.expectError(gateway.CodeUnsupportedFrame)
	// Still healthy: the session can be updated.
	c.send(map[string]any{"type": "session.update", "session": map[string]any{"instructions": "Be brief."}})
	if upd := c.until("session.updated"); upd.str("session", "instructions") != "Be brief." {
		t.Fatalf("session.updated %v", upd)
	}
	c.send(map[string]any{"type": "input_audio_buffer.append", "audio": strings.Repeat("A", 40<<10)})
	c.expectError(gateway.CodeFrameTooLarge)
	_, _, err := c.conn.Read(context.Background())
	if status := websocket.CloseStatus(err); status != websocket.StatusMessageTooBig {
		t.Fatalf("after an oversized frame: %v (status %d), want close 1009", err, status)
	}
}

// TestRealtimeHandshake: a refused handshake is an HTTP error in OpenAI's shape; the beta
// protocol is told it is not served; shutdown closes an idle connection with 1001.
func TestRealtimeHandshake(t *testing.T) {
	g := realtimeGateway(t, twoSentences, 100*time.Millisecond, func(c *gateway.Config) { c.VoiceSessions.MaxSessionsPerUser = 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name   string
		query  string
		header http.Header
		status int
		code   string
	}{
		{"unknown session", "model=fam&session_id=ses_nope", nil, 404, gateway.CodeSessionNotFound},
		{"foreign origin", "model=fam", http.Header{"Origin": {"https://evil.example"}}, 403, gateway.CodeForbiddenOrigin},
	} {
		_, resp, err := websocket.Dial(ctx, realtimeURL(g, tc.query), &websocket.DialOptions{HTTPHeader: tc.header})
		if err == nil || resp == nil || resp.StatusCode != tc.status {
			t.Fatalf("%s: %v %v, want HTTP %d", tc.name, err, resp, tc.status)
		}
		var body struct {
			Error struct{ Code, Type string }
		}
		if err := jsonDecode(resp.Body, &body); err != nil || body.Error.Code != tc.code || body.Error.Type == "" {
			t.Fatalf("%s: body %+v (%v)", tc.name, body, err)
		}
	}
	held := dialRealtime(t, g, "model=fam&user_id=one-slot")
	_, resp, err := websocket.Dial(ctx, realtimeURL(g, "model=fam&user_id=one-slot"), nil)
	if err == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a second session over the user's limit: %v %v", err, resp)
	}

	beta, _, err := websocket.Dial(ctx, realtimeURL(g, "model=fam"), &websocket.DialOptions{HTTPHeader: http.Header{"Openai-Beta": {"realtime=v1"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer beta.CloseNow()
	var sawBetaError bool
	for {
		_, b, err := beta.Read(ctx)
		if err != nil {
			if !sawBetaError || websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
				t.Fatalf("beta client: %v (error event seen: %v), want %s then close 1008", err, sawBetaError, gateway.CodeBetaShapeDisabled)
			}
			break
		}
		sawBetaError = sawBetaError || strings.Contains(string(b), gateway.CodeBetaShapeDisabled)
	}

	// The client reads while the gateway shuts down, so it answers the closing handshake.
	closed := make(chan error, 1)
	go func() {
		_, _, err := held.conn.Read(ctx)
		closed <- err
	}()
	g.shutdown(t)
	if err := within(t, closed, "the close on shutdown"); websocket.CloseStatus(err) != websocket.StatusGoingAway || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("on shutdown: %v, want close 1001", err)
	}
}

// TestRealtimeWithoutVoice: a gateway with no voice router still serves text turns on
// /v1/realtime, and says why audio is refused.
func TestRealtimeWithoutVoice(t *testing.T) {
	g := startGateway(t, nil)
	c := dialRealtime(t, g, "model=fam")
	if m := c.log[0].get("session", "output_modalities").([]any); len(m) != 1 || m[0] != "text" {
		t.Fatalf("session.created %v", c.log[0])
	}
	c.append(voice24(100))
	c.expectError(gateway.CodeVoiceDisabled)
	c.send(map[string]any{"type": "session.update", "session": map[string]any{"output_modalities": []string{"audio"}}})
	c.expectError(gateway.CodeVoiceDisabled)
	c.send(map[string]any{"type": "conversation.item.create", "item": map[string]any{"type": "message", "role": "user",
		"content": []any{map[string]any{"type": "input_text", "text": "what is 2 + 2?"}}}})
	c.send(map[string]any{"type": "response.create"})
	done := c.until("response.done")
	var text string
	for _, ev := range c.log {
		if ev.str("type") == "response.output_text.done" {
			text = ev.str("text")
		}
	}
	if done.str("response", "status") != "completed" || !strings.Contains(text, "4") {
		t.Fatalf("response.done %v, text %q", done, text)
	}
}
