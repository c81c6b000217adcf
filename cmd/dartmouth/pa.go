package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/dartmouth-gw/dartmouth/agents/pa"
	"github.com/dartmouth-gw/dartmouth/agents/pa/notify"
	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/session"
)

// newPA builds the personal assistant. It calls tools when the chain's first provider speaks
// OpenAI's tool calling (OpenAI or a compatible server); otherwise, and whenever the model is
// out of reach, its offline parser answers.
func newPA(cfg *Config, store *session.SQLStore, logger *slog.Logger) (*pa.Agent, error) {
	return pa.New(pa.Config{Store: store, Tools: cfg.OpenAIAPIKey != "" || cfg.OpenAIBaseURL != "", Logger: logger})
}

// reminderScheduler fires due reminders from the database (so ones that fell due while the
// server was down fire at start) and pushes each to the user's open sessions as a
// {"type":"reminder"} frame, on every replica when Redis is shared. When email or SMS is
// configured, the reminder is also sent to the user's own contact card (a contact named "me").
func reminderScheduler(cfg *Config, srv *gateway.Server, store *session.SQLStore, logger *slog.Logger) (*pa.Scheduler, error) {
	toSessions := pa.DelivererFunc(func(ctx context.Context, r session.Reminder) error {
		err := srv.PublishToUser(ctx, r.UserID, pa.NewReminderEvent(r))
		logger.InfoContext(ctx, "reminder fired", "reminder", r.ID, "user", r.UserID)
		return err
	})
	deliverers := pa.Deliverers{toSessions}
	notifier, err := newNotifier(cfg, logger)
	if err != nil {
		return nil, err
	}
	if notifier != nil {
		deliverers = append(deliverers, remindByMessage(store, notifier))
	}
	return pa.NewScheduler(pa.SchedulerConfig{Reminders: store, Deliverer: deliverers, Logger: logger})
}

// selfContactNames are the contact names under which a user keeps their own email and phone.
var selfContactNames = []string{"me", "myself"}

// remindByMessage emails and texts a reminder to the user's own contact card; a user without
// one is reminded in their sessions only.
func remindByMessage(store *session.SQLStore, notifier *notify.Notifier) pa.Deliverer {
	return pa.DelivererFunc(func(ctx context.Context, r session.Reminder) error {
		self, ok, err := selfContact(ctx, store, r.UserID)
		if err != nil || !ok {
			return err
		}
		_, err = notifier.Notify(ctx, notify.Message{Email: self.Email, Phone: self.Phone, Subject: "Reminder", Text: r.Text})
		if errors.Is(err, notify.ErrNoChannel) {
			return nil // the card has no address for the configured channels
		}
		return err
	})
}

func selfContact(ctx context.Context, store *session.SQLStore, userID string) (session.Contact, bool, error) {
	for _, name := range selfContactNames {
		contacts, err := store.ListContacts(ctx, userID, session.ContactFilter{Search: name})
		if err != nil {
			return session.Contact{}, false, err
		}
		for _, c := range contacts {
			if strings.EqualFold(strings.TrimSpace(c.Name), name) {
				return c, true, nil
			}
		}
	}
	return session.Contact{}, false, nil
}

// newNotifier builds email (SendGrid) and SMS (Twilio) sending from the configuration; nil
// when neither is configured.
func newNotifier(cfg *Config, logger *slog.Logger) (*notify.Notifier, error) {
	nc := notify.NotifierConfig{Logger: logger}
	if cfg.SendGridAPIKey != "" {
		from, err := notify.ParseAddress(cfg.EmailFrom)
		if err != nil {
			return nil, fmt.Errorf("email-from: %w", err)
		}
		sg, err := notify.NewSendGrid(notify.SendGridConfig{APIKey: cfg.SendGridAPIKey, From: from, BaseURL: cfg.SendGridBaseURL, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("sendgrid: %w", err)
		}
		nc.Email = sg // assigned only when built: a nil *SendGrid in the interface would count as configured
	}
	if cfg.TwilioAccountSID != "" {
		tc := notify.TwilioConfig{AccountSID: cfg.TwilioAccountSID, AuthToken: cfg.TwilioAuthToken, BaseURL: cfg.TwilioBaseURL, Logger: logger}
		if strings.HasPrefix(cfg.TwilioFrom, "MG") {
			tc.MessagingServiceSID = cfg.TwilioFrom
		} else {
			tc.From = cfg.TwilioFrom
		}
		tw, err := notify.NewTwilio(tc)
		if err != nil {
			return nil, fmt.Errorf("twilio: %w", err)
		}
		nc.SMS = tw
	}
	if nc.Email == nil && nc.SMS == nil {
		return nil, nil
	}
	return notify.NewNotifier(nc), nil
}
