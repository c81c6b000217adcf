package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// TwilioConfig configures the Twilio Messages API client.
type TwilioConfig struct {
	// AccountSID names the account ("AC…"): it is part of every URL and, unless APIKey is set,
	// the basic-auth user. Required.
	AccountSID string
	// AuthToken is the basic-auth password: the account's auth token, or the API key's secret
	// when APIKey is set. Required.
	AuthToken string
	// APIKey is an API key SID ("SK…") to authenticate with instead of the account SID.
	// Default none.
	APIKey string
	// From is the sending number in E.164 ("+15017122661") or an alphanumeric sender ID, for
	// messages that name none. One of From and MessagingServiceSID is required.
	From string
	// MessagingServiceSID ("MG…") sends through a Messaging Service, which picks the number;
	// when set it is used instead of From. Default none.
	MessagingServiceSID string
	// BaseURL of the API, without the /2010-04-01 path. Default "https://api.twilio.com".
	BaseURL string
	// HTTPClient carries the requests. Default http.DefaultClient.
	HTTPClient *http.Client
	// Timeout bounds each attempt. Default 10s.
	Timeout time.Duration
	// Retry says how failed sends are repeated; its zero value is documented on RetryPolicy.
	Retry RetryPolicy
	// Now reads the clock, to turn a Retry-After date into a wait. Default time.Now.
	Now func() time.Time
	// Logger receives a line per retry. Default slog.Default().
	Logger *slog.Logger
}

// String keeps the auth token out of anything that prints the configuration.
func (c TwilioConfig) String() string {
	return fmt.Sprintf("TwilioConfig{BaseURL:%q AccountSID:%q APIKey:%q From:%q MessagingServiceSID:%q AuthToken:%q}",
		c.BaseURL, c.AccountSID, c.APIKey, c.From, c.MessagingServiceSID, redacted(c.AuthToken))
}

// LogValue keeps the auth token out of logs.
func (c TwilioConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("baseURL", c.BaseURL), slog.String("accountSID", c.AccountSID),
		slog.String("apiKey", c.APIKey), slog.String("from", c.From),
		slog.String("messagingServiceSID", c.MessagingServiceSID), slog.String("authToken", redacted(c.AuthToken)))
}

// SMS is one text message.
type SMS struct {
	// To is the recipient in E.164 ("+14155552671"), or a channel address such as
	// "whatsapp:+14155552671".
	To string
	// From overrides the client's sender when set.
	From string
	// Body is the text, at most MaxSMSLength characters.
	Body string
}

// MaxSMSLength is the longest body Twilio accepts, in characters; longer texts are refused
// rather than cut, so the caller decides what to drop.
const MaxSMSLength = 1600

// SMSResult is what Twilio says about a message it took.
type SMSResult struct {
	// SID names the message ("SM…").
	SID string
	// Status is its state when created, usually "queued" or "accepted".
	Status string
}

// Twilio sends text messages through the Twilio Messages API.
type Twilio struct {
	cfg TwilioConfig
}

var _ SMSSender = (*Twilio)(nil)

// NewTwilio checks the configuration and builds the client.
func NewTwilio(cfg TwilioConfig) (*Twilio, error) {
	switch {
	case strings.TrimSpace(cfg.AccountSID) == "":
		return nil, fmt.Errorf("%w: twilio: the account SID is required", ErrInvalid)
	case strings.TrimSpace(cfg.AuthToken) == "":
		return nil, fmt.Errorf("%w: twilio: the auth token is required", ErrInvalid)
	case strings.TrimSpace(cfg.From) == "" && strings.TrimSpace(cfg.MessagingServiceSID) == "":
		return nil, fmt.Errorf("%w: twilio: a sender (From or MessagingServiceSID) is required", ErrInvalid)
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://api.twilio.com"
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
	return &Twilio{cfg: cfg}, nil
}

// phoneAddress is E.164, optionally behind a channel prefix ("whatsapp:").
var phoneAddress = regexp.MustCompile(`^(?:[a-z]+:)?\+[1-9][0-9]{1,14}$`)

// form checks a message and turns it into the API's form.
func (t *Twilio) form(m SMS) (url.Values, error) {
	switch {
	case strings.TrimSpace(m.To) == "":
		return nil, fmt.Errorf("%w: no recipient phone number", ErrInvalid)
	case !phoneAddress.MatchString(m.To):
		return nil, fmt.Errorf("%w: recipient %q is not an E.164 phone number (+14155552671)", ErrInvalid, m.To)
	case strings.TrimSpace(m.Body) == "":
		return nil, fmt.Errorf("%w: the text message is empty", ErrInvalid)
	case utf8.RuneCountInString(m.Body) > MaxSMSLength:
		return nil, fmt.Errorf("%w: the text message has %d characters, more than %d", ErrInvalid, utf8.RuneCountInString(m.Body), MaxSMSLength)
	}
	form := url.Values{"To": {m.To}, "Body": {m.Body}}
	switch {
	case m.From != "":
		form.Set("From", m.From)
	case t.cfg.MessagingServiceSID != "":
		form.Set("MessagingServiceSid", t.cfg.MessagingServiceSID)
	default:
		form.Set("From", t.cfg.From)
	}
	return form, nil
}

// SendSMS sends m, retrying as configured. Bad input fails with ErrInvalid before anything is
// sent; a refusal is a *TwilioError.
func (t *Twilio) SendSMS(ctx context.Context, m SMS) (SMSResult, error) {
	form, err := t.form(m)
	if err != nil {
		return SMSResult{}, fmt.Errorf("twilio: %w", err)
	}
	payload := form.Encode()
	var result SMSResult
	err = t.cfg.Retry.Run(ctx, t.cfg.Logger, "twilio send", sendRetryable, func(ctx context.Context) error {
		var err error
		result, err = t.attempt(ctx, payload)
		return err
	})
	return result, err
}

func (t *Twilio) attempt(ctx context.Context, payload string) (SMSResult, error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	endpoint := t.cfg.BaseURL + "/2010-04-01/Accounts/" + url.PathEscape(t.cfg.AccountSID) + "/Messages.json"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(payload))
	if err != nil {
		return SMSResult{}, &TwilioError{Err: err}
	}
	user := t.cfg.AccountSID
	if t.cfg.APIKey != "" {
		user = t.cfg.APIKey
	}
	req.SetBasicAuth(user, t.cfg.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, body, err := exchange(t.cfg.HTTPClient, req)
	if err != nil {
		e := &TwilioError{Err: err}
		if resp != nil {
			e.StatusCode = resp.StatusCode
		}
		return SMSResult{}, e
	}
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK {
		var msg struct {
			SID    string `json:"sid"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(body, &msg); err != nil || msg.SID == "" {
			if err == nil {
				err = errors.New("no message sid")
			}
			// Not retried: Twilio took the message, only its answer is unreadable.
			return SMSResult{}, &TwilioError{StatusCode: resp.StatusCode, Message: "unreadable answer, the message may have been sent", Err: err}
		}
		return SMSResult{SID: msg.SID, Status: msg.Status}, nil
	}
	return SMSResult{}, t.statusError(resp, body)
}

func (t *Twilio) statusError(resp *http.Response, body []byte) *TwilioError {
	e := &TwilioError{StatusCode: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header, t.cfg.Now())}
	var wire struct {
		Code     int    `json:"code"`
		Message  string `json:"message"`
		MoreInfo string `json:"more_info"`
	}
	if err := json.Unmarshal(body, &wire); err != nil || (wire.Code == 0 && wire.Message == "") {
		e.Message = snippet(body)
		return e
	}
	e.Code, e.Message, e.MoreInfo = wire.Code, wire.Message, wire.MoreInfo
	return e
}

// TwilioError is a message Twilio refused, or that never reached it.
type TwilioError struct {
	// StatusCode is the HTTP status, 0 when no answer came.
	StatusCode int
	// Code is Twilio's error code (21211: invalid To number, 20003: authentication, 20429:
	// too many requests), 0 when it gave none.
	Code int
	// Message is Twilio's explanation, or the start of an answer that was not its JSON.
	Message string
	// MoreInfo links to the documentation of Code.
	MoreInfo string
	// RetryAfter is how long Twilio asked to wait, when it said.
	RetryAfter time.Duration
	// Err is the transport or decoding failure, when that is what went wrong.
	Err error
}

func (e *TwilioError) Error() string {
	msg := e.Message
	if e.Err != nil {
		if msg == "" {
			msg = e.Err.Error()
		} else {
			msg += ": " + e.Err.Error()
		}
	}
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	if e.Code != 0 {
		msg = fmt.Sprintf("%s (code %d)", msg, e.Code)
	}
	if e.StatusCode != 0 {
		return fmt.Sprintf("twilio: HTTP %d: %s", e.StatusCode, msg)
	}
	return "twilio: " + msg
}

func (e *TwilioError) Unwrap() error { return e.Err }

// Retryable reports whether sending again may succeed: rate limited, a server failure, or no
// answer at all.
func (e *TwilioError) Retryable() bool { return retryableStatus(e.StatusCode, e.Err) }

func (e *TwilioError) retryDelay() time.Duration { return e.RetryAfter }
