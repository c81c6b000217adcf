package gateway_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/session/redistest"
)

// TestPublishToUserReachesAnotherReplica: two gateways share a real redis-server; an event
// published on A reaches the user's WebSocket on B, and only that user's.
func TestPublishToUserReachesAnotherReplica(t *testing.T) {
	srv := redistest.Start(t)
	broker := func(c *gateway.Config) {
		c.Broker = gateway.NewRedisBroker(srv.Client(t), "", slog.New(slog.DiscardHandler))
	}
	a := startGateway(t, nil, broker)
	b := startGateway(t, nil, broker)

	onB := dialVoice(t, b)
	onB.startVoice(map[string]any{"agentId": "fam", "userId": "roaming"})
	other := dialVoice(t, b)
	other.startVoice(map[string]any{"agentId": "fam", "userId": "bystander"})

	// The subscription on B may not be in place the instant B starts: publish until the
	// event arrives, each publish naming its attempt so a late duplicate is recognisable.
	deadline := time.Now().Add(10 * time.Second)
	for attempt := 0; ; attempt++ {
		if err := a.Srv.PublishToUser(context.Background(), "roaming", map[string]any{"type": "reminder", "text": "call mom", "turn": attempt}); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-onB.events:
			if ev.Type != "reminder" || ev.Text != "call mom" {
				t.Fatalf("got %+v, want the reminder", ev)
			}
			other.sendJSON(map[string]any{"type": "ping"})
			other.next(5*time.Second, func(ev voiceEvent) {
				if ev.Type == "reminder" {
					t.Error("another user's session got the reminder")
				}
			}, "pong")
			return
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the event published on A never reached the client on B")
		}
	}
}
