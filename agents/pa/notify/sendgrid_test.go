package notify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/dartmouth-gw/dartmouth/agents/pa/internal/apitest"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents/pa/notify"
)

const sendGridKey = "SG.test-key-do-not-print"

var sender = notify.Address{Email: "reminders@dartmouth.example", Name: "Dartmouth"}

// accepted is SendGrid's answer to a good send.
var accepted = apitest.Reply{Status: http.StatusAccepted, Header: map[string]string{"X-Message-Id": "msg-1"}}

// newSendGrid is a client of f whose retries are apitest.Request instead of waited for.
func newSendGrid(t *testing.T, f *apitest.FakeAPI, w *apitest.Waits, configure ...func(*notify.SendGridConfig)) *notify.SendGrid {
	t.Helper()
	cfg := notify.SendGridConfig{
		APIKey: sendGridKey, From: sender, BaseURL: f.Srv.URL, HTTPClient: f.Srv.Client(),
		Retry: notify.RetryPolicy{Sleep: w.Sleep}, Now: now, Logger: slog.New(slog.DiscardHandler),
	}
	for _, c := range configure {
		c(&cfg)
	}
	sg, err := notify.NewSendGrid(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

func TestSendGridSendsTheDocumentedMailSendRequest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		email notify.Email
		want  string
	}{
		{
			"plain text to a named recipient",
			notify.Email{To: notify.Address{Email: "ann@example.com", Name: "Ann"}, Subject: "Reminder", Text: "Call mom"},
			`{"personalizations":[{"to":[{"email":"ann@example.com","name":"Ann"}]}],
			  "from":{"email":"reminders@dartmouth.example","name":"Dartmouth"},
			  "subject":"Reminder","content":[{"type":"text/plain","value":"Call mom"}]}`,
		},
		{
			"text before HTML, sender and reply-to of its own",
			notify.Email{
				To: notify.Address{Email: "bob@example.com"}, From: notify.Address{Email: "pa@dartmouth.example"},
				ReplyTo: notify.Address{Email: "help@dartmouth.example", Name: "Help"},
				Subject: "Dentist", Text: "Dentist at 3pm", HTML: "<p>Dentist at <b>3pm</b></p>",
			},
			`{"personalizations":[{"to":[{"email":"bob@example.com"}]}],
			  "from":{"email":"pa@dartmouth.example"},"reply_to":{"email":"help@dartmouth.example","name":"Help"},
			  "subject":"Dentist","content":[{"type":"text/plain","value":"Dentist at 3pm"},
			  {"type":"text/html","value":"<p>Dentist at <b>3pm</b></p>"}]}`,
		},
		{
			"HTML only",
			notify.Email{To: notify.Address{Email: "cy@example.com"}, Subject: "Hi", HTML: "<p>Hi</p>"},
			`{"personalizations":[{"to":[{"email":"cy@example.com"}]}],
			  "from":{"email":"reminders@dartmouth.example","name":"Dartmouth"},
			  "subject":"Hi","content":[{"type":"text/html","value":"<p>Hi</p>"}]}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := apitest.NewFakeAPI(t, accepted)
			id, err := newSendGrid(t, f, &apitest.Waits{}).SendEmail(t.Context(), tc.email)
			if err != nil {
				t.Fatal(err)
			}
			if id != "msg-1" {
				t.Errorf("message ID %q, want msg-1 (from X-Message-Id)", id)
			}
			req := f.Only(t)
			if req.Method != http.MethodPost || req.Path != "/v3/mail/send" {
				t.Errorf("%s %s, want POST /v3/mail/send", req.Method, req.Path)
			}
			apitest.WantHeader(t, req.Header, map[string]string{"Authorization": "Bearer " + sendGridKey, "Content-Type": "application/json"})
			apitest.WantJSON(t, req.Body, tc.want)
		})
	}
}

func TestSendGridSandboxAnswerIsSuccess(t *testing.T) {
	f := apitest.NewFakeAPI(t, apitest.Reply{Status: http.StatusOK})
	id, err := newSendGrid(t, f, &apitest.Waits{}).SendEmail(t.Context(), notify.Email{To: notify.Address{Email: "a@example.com"}, Subject: "s", Text: "t"})
	if err != nil || id != "" {
		t.Fatalf("SendEmail = %q, %v; want success without an ID", id, err)
	}
}

func TestSendGridRefusesBadInputBeforeSending(t *testing.T) {
	good := notify.Email{To: notify.Address{Email: "ann@example.com"}, Subject: "Reminder", Text: "Call mom"}
	for _, tc := range []struct {
		name   string
		change func(*notify.Email)
		want   string
	}{
		{"no recipient", func(e *notify.Email) { e.To.Email = "" }, "no recipient email address"},
		{"blank recipient", func(e *notify.Email) { e.To.Email = "   " }, "no recipient email address"},
		{"recipient not an address", func(e *notify.Email) { e.To.Email = "ann at example" }, `recipient email address "ann at example" is not valid`},
		{"recipient in display form", func(e *notify.Email) { e.To.Email = "Ann <ann@example.com>" }, "is not valid"},
		{"bad sender", func(e *notify.Email) { e.From.Email = "nobody" }, `sender email address "nobody" is not valid`},
		{"bad reply-to", func(e *notify.Email) { e.ReplyTo.Email = "@x" }, "reply-to email address"},
		{"no subject", func(e *notify.Email) { e.Subject = " " }, "no subject"},
		{"no body", func(e *notify.Email) { e.Text, e.HTML = "", " \n" }, "no body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := apitest.NewFakeAPI(t, accepted)
			e := good
			tc.change(&e)
			_, err := newSendGrid(t, f, &apitest.Waits{}).SendEmail(t.Context(), e)
			if !errors.Is(err, notify.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrInvalid saying %q", err, tc.want)
			}
			if n := len(f.Requests()); n != 0 {
				t.Errorf("%d requests were sent for bad input", n)
			}
		})
	}
}

func TestNewSendGridChecksItsConfiguration(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  notify.SendGridConfig
		want string
	}{
		{"no key", notify.SendGridConfig{From: sender}, "API key is required"},
		{"no sender", notify.SendGridConfig{APIKey: "k"}, "no sender email address"},
		{"bad sender", notify.SendGridConfig{APIKey: "k", From: notify.Address{Email: "reminders"}}, "is not valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := notify.NewSendGrid(tc.cfg)
			if !errors.Is(err, notify.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrInvalid saying %q", err, tc.want)
			}
		})
	}
}

func TestSendGridFailuresAndRetries(t *testing.T) {
	const validation = `{"errors":[{"message":"The from address does not match a verified Sender Identity.","field":"from","help":"https://sendgrid.com/docs/for-developers/sending-email/sender-identity/"},{"message":"The subject is required.","field":"subject","help":null}]}`
	const unauthorized = `{"errors":[{"field":null,"message":"The provided authorization grant is invalid, expired, or revoked","help":null}]}`
	for _, tc := range []struct {
		name         string
		replies      []apitest.Reply
		wantRequests int
		wantWaits    []time.Duration
		// wantErr nil means the send must succeed in the end.
		wantErr *notify.SendGridError
		// retryable is what the final error says.
		retryable bool
	}{
		{
			name:         "400 lists every reason and is not retried",
			replies:      []apitest.Reply{{Status: 400, Body: validation}},
			wantRequests: 1,
			wantErr: &notify.SendGridError{StatusCode: 400, Errors: []notify.SendGridErrorDetail{
				{Message: "The from address does not match a verified Sender Identity.", Field: "from", Help: "https://sendgrid.com/docs/for-developers/sending-email/sender-identity/"},
				{Message: "The subject is required.", Field: "subject"},
			}},
		},
		{
			name:         "401 with a null field is not retried",
			replies:      []apitest.Reply{{Status: 401, Body: unauthorized}},
			wantRequests: 1,
			wantErr:      &notify.SendGridError{StatusCode: 401, Errors: []notify.SendGridErrorDetail{{Message: "The provided authorization grant is invalid, expired, or revoked"}}},
		},
		{
			name:         "an odd field type does not lose the error",
			replies:      []apitest.Reply{{Status: 400, Body: `{"errors":[{"message":"bad","field":{"path":"to"}}]}`}},
			wantRequests: 1,
			wantErr:      &notify.SendGridError{StatusCode: 400, Errors: []notify.SendGridErrorDetail{{Message: "bad", Field: `{"path":"to"}`}}},
		},
		{
			name:         "malformed error JSON is kept raw",
			replies:      []apitest.Reply{{Status: 400, Body: `{"errors": [`}},
			wantRequests: 1,
			wantErr:      &notify.SendGridError{StatusCode: 400, Raw: `{"errors": [`},
		},
		{
			name:         "429 waits as long as Retry-After says",
			replies:      []apitest.Reply{{Status: 429, Header: map[string]string{"Retry-After": "3"}, Body: `{"errors":[{"message":"too many requests"}]}`}, accepted},
			wantRequests: 2,
			wantWaits:    []time.Duration{3 * time.Second},
		},
		{
			name:         "429 with Retry-After as an HTTP date",
			replies:      []apitest.Reply{{Status: 429, Header: map[string]string{"Retry-After": fixedNow.Add(20 * time.Second).Format(http.TimeFormat)}}, accepted},
			wantRequests: 2,
			wantWaits:    []time.Duration{20 * time.Second},
		},
		{
			name:         "429 waits until X-RateLimit-Reset",
			replies:      []apitest.Reply{{Status: 429, Header: map[string]string{"X-RateLimit-Reset": strconv.FormatInt(fixedNow.Add(7*time.Second).Unix(), 10)}}, accepted},
			wantRequests: 2,
			wantWaits:    []time.Duration{7 * time.Second},
		},
		{
			name:         "429 asking for too long a wait gives up at once",
			replies:      []apitest.Reply{{Status: 429, Header: map[string]string{"Retry-After": "120"}, Body: `{"errors":[{"message":"too many requests"}]}`}},
			wantRequests: 1,
			wantErr:      &notify.SendGridError{StatusCode: 429, RetryAfter: 120 * time.Second, Errors: []notify.SendGridErrorDetail{{Message: "too many requests"}}},
			retryable:    true,
		},
		{
			name:         "500 is retried with doubling backoff, then reported",
			replies:      []apitest.Reply{{Status: 500, Body: `{"errors":[{"message":"internal error"}]}`}},
			wantRequests: 3,
			wantWaits:    []time.Duration{time.Second, 2 * time.Second},
			wantErr:      &notify.SendGridError{StatusCode: 500, Errors: []notify.SendGridErrorDetail{{Message: "internal error"}}},
			retryable:    true,
		},
		{
			name:         "a proxy's HTML page, then success",
			replies:      []apitest.Reply{{Status: 502, Body: "<html>\n<h1>502 Bad Gateway</h1>\n</html>"}, accepted},
			wantRequests: 2,
			wantWaits:    []time.Duration{time.Second},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := apitest.NewFakeAPI(t, tc.replies...)
			w := &apitest.Waits{}
			id, err := newSendGrid(t, f, w).SendEmail(t.Context(), notify.Email{To: notify.Address{Email: "ann@example.com"}, Subject: "s", Text: "t"})
			if n := len(f.Requests()); n != tc.wantRequests {
				t.Errorf("%d requests, want %d", n, tc.wantRequests)
			}
			w.Want(t, tc.wantWaits...)
			if tc.wantErr == nil {
				if err != nil || id != "msg-1" {
					t.Fatalf("SendEmail = %q, %v; want msg-1", id, err)
				}
				return
			}
			var se *notify.SendGridError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *SendGridError", err)
			}
			if !reflect.DeepEqual(se, tc.wantErr) {
				t.Errorf("error %#v\nwant %#v", se, tc.wantErr)
			}
			if se.Retryable() != tc.retryable {
				t.Errorf("Retryable() = %v, want %v", se.Retryable(), tc.retryable)
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("sendgrid: HTTP %d: ", tc.wantErr.StatusCode)) {
				t.Errorf("message %q does not name the status", err)
			}
		})
	}
}

func TestSendGridErrorMessages(t *testing.T) {
	for _, tc := range []struct {
		err  *notify.SendGridError
		want string
	}{
		{&notify.SendGridError{StatusCode: 400, Errors: []notify.SendGridErrorDetail{{Message: "a", Field: "from"}, {Message: "b"}}}, "sendgrid: HTTP 400: a (from); b"},
		{&notify.SendGridError{StatusCode: 502, Raw: "<html> bad gateway </html>"}, "sendgrid: HTTP 502: <html> bad gateway </html>"},
		{&notify.SendGridError{StatusCode: 503}, "sendgrid: HTTP 503: Service Unavailable"},
		{&notify.SendGridError{Err: context.DeadlineExceeded}, "sendgrid: context deadline exceeded"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestSendGridStopsWhenTheContextEnds(t *testing.T) {
	srv, arrived := apitest.Hanging(t)
	sg, err := notify.NewSendGrid(notify.SendGridConfig{APIKey: sendGridKey, From: sender, BaseURL: srv.URL, HTTPClient: srv.Client(),
		Retry: notify.RetryPolicy{Sleep: func(context.Context, time.Duration) error { t.Error("a cancelled send was retried"); return nil }}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-arrived
		cancel()
	}()
	_, err = sg.SendEmail(ctx, notify.Email{To: notify.Address{Email: "ann@example.com"}, Subject: "s", Text: "t"})
	var se *notify.SendGridError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &se) || se.StatusCode != 0 || se.Retryable() {
		t.Fatalf("err = %#v, want a non-retryable *SendGridError wrapping context.Canceled", err)
	}
}

func TestSendGridStopsWaitingToRetryWhenTheContextEnds(t *testing.T) {
	f := apitest.NewFakeAPI(t, apitest.Reply{Status: 503})
	ctx, cancel := context.WithCancel(t.Context())
	sg := newSendGrid(t, f, &apitest.Waits{}, func(c *notify.SendGridConfig) {
		c.Retry.Sleep = func(ctx context.Context, d time.Duration) error {
			cancel()
			return ctx.Err()
		}
	})
	_, err := sg.SendEmail(ctx, notify.Email{To: notify.Address{Email: "ann@example.com"}, Subject: "s", Text: "t"})
	var se *notify.SendGridError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &se) || se.StatusCode != 503 {
		t.Fatalf("err = %v, want the 503 and context.Canceled", err)
	}
	if n := len(f.Requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestSendGridTimeoutBoundsEachAttempt(t *testing.T) {
	// The first attempt gets no answer; the retry does.
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			io.Copy(io.Discard, r.Body) // so that the server notices the client leaving
			<-r.Context().Done()
			return
		}
		w.Header().Set("X-Message-Id", "msg-2")
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	w := &apitest.Waits{}
	sg, err := notify.NewSendGrid(notify.SendGridConfig{APIKey: sendGridKey, From: sender, BaseURL: srv.URL, HTTPClient: srv.Client(),
		Timeout: 50 * time.Millisecond, Retry: notify.RetryPolicy{Sleep: w.Sleep}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	id, err := sg.SendEmail(t.Context(), notify.Email{To: notify.Address{Email: "ann@example.com"}, Subject: "s", Text: "t"})
	if err != nil || id != "msg-2" {
		t.Fatalf("SendEmail = %q, %v; want the retry to succeed", id, err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	w.Want(t, time.Second)
}

func TestSendGridKeepsTheKeySecret(t *testing.T) {
	cfg := notify.SendGridConfig{APIKey: sendGridKey, From: sender}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "sendgrid", cfg)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "sendgrid", cfg)
	f := apitest.NewFakeAPI(t, apitest.Reply{Status: 401, Body: `{"errors":[{"message":"bad key"}]}`})
	_, err := newSendGrid(t, f, &apitest.Waits{}).SendEmail(t.Context(), notify.Email{To: notify.Address{Email: "a@example.com"}, Subject: "s", Text: "t"})
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%s", &cfg), logged.String(), err.Error()} {
		if strings.Contains(s, sendGridKey) {
			t.Errorf("the API key shows in %q", s)
		}
	}
	if !strings.Contains(fmt.Sprint(cfg), "[redacted]") {
		t.Errorf("%v does not say the key is set", cfg)
	}
}

func TestParseAddress(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want notify.Address
		ok   bool
	}{
		{"reminders@dartmouth.example", notify.Address{Email: "reminders@dartmouth.example"}, true},
		{" Dartmouth <reminders@dartmouth.example> ", notify.Address{Email: "reminders@dartmouth.example", Name: "Dartmouth"}, true},
		{`"Dartmouth, PA" <pa@dartmouth.example>`, notify.Address{Email: "pa@dartmouth.example", Name: "Dartmouth, PA"}, true},
		{"", notify.Address{}, false},
		{"reminders", notify.Address{}, false},
	} {
		got, err := notify.ParseAddress(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseAddress(%q) = %+v, %v; want %+v (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, notify.ErrInvalid) {
			t.Errorf("ParseAddress(%q): %v is not ErrInvalid", tc.in, err)
		}
	}
}
