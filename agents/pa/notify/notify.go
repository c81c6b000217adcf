// Package notify delivers the personal assistant's reminders outside the app: email through
// SendGrid's v3 Mail Send API and text messages through Twilio's Messages API, each used only
// when configured.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// ErrInvalid marks input refused before anything was sent: a missing or malformed address,
// an empty message, a configuration without its required fields.
var ErrInvalid = errors.New("notify: invalid input")

// ErrNoChannel is returned when a message could go nowhere: no client is configured for the
// addresses it has. It is not a failure to deliver, and callers usually ignore it.
var ErrNoChannel = errors.New("notify: no configured channel reaches this recipient")

// EmailSender sends one email and returns the provider's message ID. *SendGrid is one.
type EmailSender interface {
	SendEmail(ctx context.Context, e Email) (string, error)
}

// SMSSender sends one text message. *Twilio is one.
type SMSSender interface {
	SendSMS(ctx context.Context, m SMS) (SMSResult, error)
}

// NotifierConfig says which channels a Notifier uses.
type NotifierConfig struct {
	// Email sends email. Default none: nothing is emailed.
	Email EmailSender
	// SMS sends text messages. Default none: nothing is texted.
	SMS SMSSender
	// DefaultSubject is the email subject of messages that have none. Default "Reminder".
	DefaultSubject string
	// Logger receives a line per delivery. Default slog.Default().
	Logger *slog.Logger
}

// Message is a notification for one person, such as a reminder that came due.
type Message struct {
	// Email is the recipient's address; empty means no email.
	Email string
	// Name is the recipient's display name, for the email's To. Optional.
	Name string
	// Phone is the recipient's number in E.164 ("+14155552671"); empty means no text message.
	Phone string
	// Subject is the email subject and the first words of the text message. Default the
	// notifier's DefaultSubject for email, nothing for SMS.
	Subject string
	// Text is what to say. Required.
	Text string
	// HTML is an optional HTML body for the email, shown instead of Text by mail clients
	// that can.
	HTML string
}

// Result says what went out.
type Result struct {
	// EmailSent reports that the email provider accepted the email; EmailID is its ID.
	EmailSent bool
	EmailID   string
	// SMSSent reports that the SMS provider accepted the text message; SMS describes it.
	SMSSent bool
	SMS     SMSResult
}

// Notifier sends a message by email and SMS, through whichever of the two are configured and
// the recipient has an address for.
type Notifier struct {
	cfg NotifierConfig
}

// NewNotifier builds a notifier; with neither channel configured every Notify returns
// ErrNoChannel.
func NewNotifier(cfg NotifierConfig) *Notifier {
	if cfg.DefaultSubject == "" {
		cfg.DefaultSubject = "Reminder"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Notifier{cfg: cfg}
}

// Channels names the configured channels ("email", "sms"), for start-up logs and health.
func (n *Notifier) Channels() []string {
	var out []string
	if n.cfg.Email != nil {
		out = append(out, "email")
	}
	if n.cfg.SMS != nil {
		out = append(out, "sms")
	}
	return out
}

// Notify sends m on every channel that is configured and that m has an address for. Both are
// attempted even when one fails; the Result says which went out and the error joins the
// failures (*SendGridError, *TwilioError, or ErrInvalid for an address a provider would
// refuse). ErrNoChannel means nothing could be attempted.
func (n *Notifier) Notify(ctx context.Context, m Message) (Result, error) {
	if strings.TrimSpace(m.Text) == "" && strings.TrimSpace(m.HTML) == "" {
		return Result{}, fmt.Errorf("%w: the notification has no text", ErrInvalid)
	}
	useEmail := n.cfg.Email != nil && strings.TrimSpace(m.Email) != ""
	useSMS := n.cfg.SMS != nil && strings.TrimSpace(m.Phone) != ""
	if !useEmail && !useSMS {
		return Result{}, ErrNoChannel
	}
	var res Result
	var errs []error
	if useEmail {
		subject := m.Subject
		if strings.TrimSpace(subject) == "" {
			subject = n.cfg.DefaultSubject
		}
		id, err := n.cfg.Email.SendEmail(ctx, Email{To: Address{Email: m.Email, Name: m.Name}, Subject: subject, Text: m.Text, HTML: m.HTML})
		if err != nil {
			errs = append(errs, fmt.Errorf("email: %w", err))
		} else {
			res.EmailSent, res.EmailID = true, id
			n.cfg.Logger.InfoContext(ctx, "notification emailed", "id", id)
		}
	}
	if useSMS {
		sms, err := n.cfg.SMS.SendSMS(ctx, SMS{To: m.Phone, Body: smsBody(m.Subject, m.Text)})
		if err != nil {
			errs = append(errs, fmt.Errorf("sms: %w", err))
		} else {
			res.SMSSent, res.SMS = true, sms
			n.cfg.Logger.InfoContext(ctx, "notification texted", "sid", sms.SID, "status", sms.Status)
		}
	}
	return res, errors.Join(errs...)
}

// smsBody is the subject and text on one message, cut to what Twilio takes: a reminder too
// long for a text is better shortened than not sent.
func smsBody(subject, text string) string {
	subject, text = strings.TrimSpace(subject), strings.TrimSpace(text)
	body := text
	switch {
	case subject == "":
	case text == "":
		body = subject
	default:
		body = subject + ": " + text
	}
	if r := []rune(body); len(r) > MaxSMSLength {
		body = string(r[:MaxSMSLength-1]) + "…"
	}
	return body
}
