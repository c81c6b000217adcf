package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
)

// eventSink is an open client session that can take a pushed event (a WebSocket, a WebRTC
// data channel).
type eventSink interface {
	pushEvent(ctx context.Context, payload []byte) error
}

// userSessions indexes the open sessions by user, so an event for a user (a reminder, a
// hand-off) reaches every device they have connected to this replica.
type userSessions struct {
	mu    sync.Mutex
	sinks map[string]map[eventSink]struct{}
}

// add registers a sink for the user and returns the function that removes it.
func (u *userSessions) add(userID string, sink eventSink) (remove func()) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.sinks == nil {
		u.sinks = map[string]map[eventSink]struct{}{}
	}
	if u.sinks[userID] == nil {
		u.sinks[userID] = map[eventSink]struct{}{}
	}
	u.sinks[userID][sink] = struct{}{}
	var once sync.Once
	return func() {
		once.Do(func() {
			u.mu.Lock()
			defer u.mu.Unlock()
			delete(u.sinks[userID], sink)
			if len(u.sinks[userID]) == 0 {
				delete(u.sinks, userID)
			}
		})
	}
}

func (u *userSessions) of(userID string) []eventSink {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]eventSink, 0, len(u.sinks[userID]))
	for s := range u.sinks[userID] {
		out = append(out, s)
	}
	return out
}

// DeliverToUser sends event (a JSON object with a "type", such as {"type":"reminder",...})
// to every session the user has open on this replica and returns how many took it. A session
// that cannot take it in time is skipped, not waited for.
func (s *Server) DeliverToUser(ctx context.Context, userID string, event any) (int, error) {
	payload, err := json.Marshal(event)
	if err != nil {
		return 0, fmt.Errorf("deliver to user: %w", err)
	}
	delivered := 0
	for _, sink := range s.users.of(userID) {
		if err := sink.pushEvent(ctx, payload); err == nil {
			delivered++
		}
	}
	return delivered, nil
}
