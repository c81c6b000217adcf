package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"
)

// SendGridConfig configures the SendGrid v3 Mail Send client.
type SendGridConfig struct {
	// APIKey is sent as a bearer token. Required.
	APIKey string
	// From is the sender of every email that names none; SendGrid accepts only a verified
	// sender identity. Required.
	From Address
	// BaseURL of the API, without the /v3 path. Default "https://api.sendgrid.com".
	BaseURL string
	// HTTPClient carries the requests. Default http.DefaultClient.
	HTTPClient *http.Client
	// Timeout bounds each attempt. Default 10s.
	Timeout time.Duration
	// Retry says how failed sends are repeated; its zero value is documented on RetryPolicy.
	Retry RetryPolicy
	// Now reads the clock, to turn rate-limit reset times into waits. Default time.Now.
	Now func() time.Time
	// Logger receives a line per retry. Default slog.Default().
	Logger *slog.Logger
}

// String keeps the API key out of anything that prints the configuration.
func (c SendGridConfig) String() string {
	return fmt.Sprintf("SendGridConfig{BaseURL:%q From:%v APIKey:%q}", c.BaseURL, c.From, redacted(c.APIKey))
}

// LogValue keeps the API key out of logs.
func (c SendGridConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("baseURL", c.BaseURL), slog.String("from", c.From.Email), slog.String("apiKey", redacted(c.APIKey)))
}

// Address is an email address with an optional display name.
type Address struct {
	Email string
	Name  string
}

// ParseAddress reads an address as configuration gives it, bare ("reminders@example.com")
// or with a display name ("Dartmouth <reminders@example.com>").
func ParseAddress(s string) (Address, error) {
	a, err := mail.ParseAddress(strings.TrimSpace(s))
	if err != nil {
		return Address{}, fmt.Errorf("%w: email address %q: %w", ErrInvalid, s, err)
	}
	return Address{Email: a.Address, Name: a.Name}, nil
}

// Email is one message to one recipient.
type Email struct {
	To Address
	// From overrides the client's sender when set.
	From Address
	// ReplyTo is where answers go, when it is not From.
	ReplyTo Address
	Subject string
	// Text is the text/plain body and HTML the text/html one; at least one is required, and
	// clients show the HTML when both are given.
	Text string
	HTML string
}

// SendGrid sends email through the SendGrid v3 Mail Send API.
type SendGrid struct {
	cfg SendGridConfig
}

var _ EmailSender = (*SendGrid)(nil)

// NewSendGrid checks the configuration and builds the client.
func NewSendGrid(cfg SendGridConfig) (*SendGrid, error) {
	if strings.TrimSpace(cfg.APIKey) == "" {
		return nil, fmt.Errorf("%w: sendgrid: the API key is required", ErrInvalid)
	}
	if err := checkEmailAddress("sender", cfg.From.Email); err != nil {
		return nil, fmt.Errorf("sendgrid: %w", err)
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://api.sendgrid.com"
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	cfg.Retry = cfg.Retry.WithDefaults()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &SendGrid{cfg: cfg}, nil
}

type sendGridAddress struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
}

type sendGridPersonalization struct {
	To []sendGridAddress `json:"to"`
}

type sendGridContent struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type sendGridRequest struct {
	Personalizations []sendGridPersonalization `json:"personalizations"`
	From             sendGridAddress           `json:"from"`
	ReplyTo          *sendGridAddress          `json:"reply_to,omitempty"`
	Subject          string                    `json:"subject"`
	Content          []sendGridContent         `json:"content"`
}

// mailRequest checks an email and turns it into the API's body.
func (s *SendGrid) mailRequest(e Email) (sendGridRequest, error) {
	if e.From.Email == "" {
		e.From = s.cfg.From
	}
	if err := checkEmailAddress("recipient", e.To.Email); err != nil {
		return sendGridRequest{}, err
	}
	if err := checkEmailAddress("sender", e.From.Email); err != nil {
		return sendGridRequest{}, err
	}
	req := sendGridRequest{
		Personalizations: []sendGridPersonalization{{To: []sendGridAddress{{Email: e.To.Email, Name: e.To.Name}}}},
		From:             sendGridAddress{Email: e.From.Email, Name: e.From.Name},
		Subject:          e.Subject,
	}
	if e.ReplyTo.Email != "" {
		if err := checkEmailAddress("reply-to", e.ReplyTo.Email); err != nil {
			return sendGridRequest{}, err
		}
		req.ReplyTo = &sendGridAddress{Email: e.ReplyTo.Email, Name: e.ReplyTo.Name}
	}
	if strings.TrimSpace(e.Subject) == "" {
		return sendGridRequest{}, fmt.Errorf("%w: the email has no subject", ErrInvalid)
	}
	// SendGrid requires text/plain before text/html.
	if strings.TrimSpace(e.Text) != "" {
		req.Content = append(req.Content, sendGridContent{Type: "text/plain", Value: e.Text})
	}
	if strings.TrimSpace(e.HTML) != "" {
		req.Content = append(req.Content, sendGridContent{Type: "text/html", Value: e.HTML})
	}
	if len(req.Content) == 0 {
		return sendGridRequest{}, fmt.Errorf("%w: the email has no body", ErrInvalid)
	}
	return req, nil
}

// SendEmail sends e, retrying as configured, and returns SendGrid's message ID (from the
// X-Message-Id header; empty if SendGrid sent none). Bad input fails with ErrInvalid before
// anything is sent; a refusal is a *SendGridError.
func (s *SendGrid) SendEmail(ctx context.Context, e Email) (string, error) {
	body, err := s.mailRequest(e)
	if err != nil {
		return "", fmt.Errorf("sendgrid: %w", err)
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return "", fmt.Errorf("sendgrid: %w", err)
	}
	var messageID string
	err = s.cfg.Retry.Run(ctx, s.cfg.Logger, "sendgrid send", sendRetryable, func(ctx context.Context) error {
		id, err := s.attempt(ctx, payload)
		messageID = id
		return err
	})
	return messageID, err
}

func (s *SendGrid) attempt(ctx context.Context, payload []byte) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.BaseURL+"/v3/mail/send", bytes.NewReader(payload))
	if err != nil {
		return "", &SendGridError{Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+s.cfg.APIKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, body, err := exchange(s.cfg.HTTPClient, req)
	// 202 is a real send; 200 is what sandbox mode answers after validating the request. The
	// body of either says nothing, so failing to read it changes nothing.
	if resp != nil && (resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK) {
		return resp.Header.Get("X-Message-Id"), nil
	}
	if err != nil {
		e := &SendGridError{Err: err}
		if resp != nil {
			e.StatusCode = resp.StatusCode
		}
		return "", e
	}
	return "", s.statusError(resp, body)
}

func (s *SendGrid) statusError(resp *http.Response, body []byte) *SendGridError {
	e := &SendGridError{StatusCode: resp.StatusCode}
	now := s.cfg.Now()
	e.RetryAfter = parseRetryAfter(resp.Header, now)
	if e.RetryAfter == 0 && resp.StatusCode == http.StatusTooManyRequests {
		// SendGrid's rate limits say when the window resets rather than how long to wait.
		if reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			if at := time.Unix(reset, 0); at.After(now) {
				e.RetryAfter = at.Sub(now)
			}
		}
	}
	var envelope struct {
		Errors []struct {
			Message looseString `json:"message"`
			Field   looseString `json:"field"`
			Help    looseString `json:"help"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &envelope); err != nil || len(envelope.Errors) == 0 {
		e.Raw = snippet(body)
		return e
	}
	for _, d := range envelope.Errors {
		e.Errors = append(e.Errors, SendGridErrorDetail{Message: string(d.Message), Field: string(d.Field), Help: string(d.Help)})
	}
	return e
}

// SendGridError is a send SendGrid refused or that never reached it.
type SendGridError struct {
	// StatusCode is the HTTP status, 0 when no answer came.
	StatusCode int
	// Errors are the reasons SendGrid gave, in its order.
	Errors []SendGridErrorDetail
	// Raw is the start of an answer that was not SendGrid's JSON (a proxy's error page).
	Raw string
	// RetryAfter is how long SendGrid asked to wait (Retry-After or X-RateLimit-Reset).
	RetryAfter time.Duration
	// Err is the transport failure, when that is what went wrong.
	Err error
}

// SendGridErrorDetail is one entry of SendGrid's error list.
type SendGridErrorDetail struct {
	Message string
	// Field names the part of the request at fault, when SendGrid says.
	Field string
	// Help links to the documentation of the problem, when SendGrid gives one.
	Help string
}

func (e *SendGridError) Error() string {
	var msg string
	switch {
	case len(e.Errors) > 0:
		parts := make([]string, len(e.Errors))
		for i, d := range e.Errors {
			parts[i] = d.Message
			if d.Field != "" {
				parts[i] += " (" + d.Field + ")"
			}
		}
		msg = strings.Join(parts, "; ")
	case e.Err != nil:
		msg = e.Err.Error()
	case e.Raw != "":
		msg = e.Raw
	default:
		msg = http.StatusText(e.StatusCode)
	}
	if e.StatusCode != 0 {
		return fmt.Sprintf("sendgrid: HTTP %d: %s", e.StatusCode, msg)
	}
	return "sendgrid: " + msg
}

func (e *SendGridError) Unwrap() error { return e.Err }

// Retryable reports whether sending again may succeed: rate limited, a server failure, or no
// answer at all.
func (e *SendGridError) Retryable() bool { return retryableStatus(e.StatusCode, e.Err) }

func (e *SendGridError) retryDelay() time.Duration { return e.RetryAfter }

// looseString decodes a JSON string, or keeps any other value as its JSON text, so one
// oddly typed field does not lose the whole error.
type looseString string

func (s *looseString) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err == nil {
		*s = looseString(v)
		return nil
	}
	*s = looseString(b)
	return nil
}

// checkEmailAddress accepts a bare address ("a@b.example"), not a display form.
func checkEmailAddress(role, addr string) error {
	if strings.TrimSpace(addr) == "" {
		return fmt.Errorf("%w: no %s email address", ErrInvalid, role)
	}
	parsed, err := mail.ParseAddress(addr)
	if err != nil || parsed.Address != addr {
		return fmt.Errorf("%w: %s email address %q is not valid", ErrInvalid, role, addr)
	}
	return nil
}
