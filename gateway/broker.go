package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// Broker carries events for users between replicas: an event published on any replica reaches
// the sessions the user holds on every replica. Without one (Config.Broker nil) events reach
// the sessions of this replica only.
type Broker interface {
	// Publish sends an event for a user to every replica.
	Publish(ctx context.Context, userID string, payload []byte) error
	// Subscribe hands every published event to deliver until ctx ends, surviving outages of
	// the broker.
	Subscribe(ctx context.Context, deliver func(userID string, payload []byte)) error
}

// RedisBroker is a Broker over Redis pub/sub: one channel, each message naming its user.
type RedisBroker struct {
	client  redis.UniversalClient
	channel string
	log     *slog.Logger
}

var _ Broker = (*RedisBroker)(nil)

// NewRedisBroker publishes and subscribes on channel (default "dartmouth:user-events").
func NewRedisBroker(client redis.UniversalClient, channel string, log *slog.Logger) *RedisBroker {
	if channel == "" {
		channel = "dartmouth:user-events"
	}
	if log == nil {
		log = slog.Default()
	}
	return &RedisBroker{client: client, channel: channel, log: log}
}

type brokerMessage struct {
	UserID  string          `json:"u"`
	Payload json.RawMessage `json:"p"`
}

// Publish implements Broker.
func (b *RedisBroker) Publish(ctx context.Context, userID string, payload []byte) error {
	msg, err := json.Marshal(brokerMessage{UserID: userID, Payload: payload})
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	if err := b.client.Publish(ctx, b.channel, msg).Err(); err != nil {
		return fmt.Errorf("broker: publish: %w", err)
	}
	return nil
}

// Subscribe implements Broker. go-redis re-subscribes by itself after a lost connection;
// messages published during the outage are lost, as pub/sub promises no more.
func (b *RedisBroker) Subscribe(ctx context.Context, deliver func(userID string, payload []byte)) error {
	sub := b.client.Subscribe(ctx, b.channel)
	defer sub.Close()
	ch := sub.Channel(redis.WithChannelHealthCheckInterval(10 * time.Second))
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-ch:
			if !ok {
				return errors.New("broker: subscription closed")
			}
			var msg brokerMessage
			if err := json.Unmarshal([]byte(m.Payload), &msg); err != nil || msg.UserID == "" {
				b.log.Warn("broker: unreadable message dropped", "err", err)
				continue
			}
			deliver(msg.UserID, msg.Payload)
		}
	}
}

// PublishToUser sends event to the user's sessions on every replica (through Config.Broker),
// or on this one when there is no broker.
func (s *Server) PublishToUser(ctx context.Context, userID string, event any) error {
	if s.cfg.Broker == nil {
		_, err := s.DeliverToUser(ctx, userID, event)
		return err
	}
	payload, err := json.Marshal(event)
	if err != nil {
		return fmt.Errorf("publish to user: %w", err)
	}
	return s.cfg.Broker.Publish(ctx, userID, payload)
}

// runBroker delivers the broker's events to this replica's sessions until the server stops.
func (s *Server) runBroker(ctx context.Context) {
	for ctx.Err() == nil {
		err := s.cfg.Broker.Subscribe(ctx, func(userID string, payload []byte) {
			deliverCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			for _, sink := range s.users.of(userID) {
				sink.pushEvent(deliverCtx, payload)
			}
		})
		if err != nil && ctx.Err() == nil {
			s.log.Warn("broker subscription ended; subscribing again", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}
