package notify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/dartmouth-gw/dartmouth/agents/pa/internal/apitest"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents/pa/notify"
)

const (
	twilioAccount = "AC0123456789abcdef0123456789abcdef"
	twilioToken   = "twilio-secret-do-not-print"
	twilioFrom    = "+15017122661"
)

// created is Twilio's answer to a message it took, as the API documents it (abridged).
var created = apitest.Reply{Status: http.StatusCreated, Body: `{"account_sid":"` + twilioAccount + `","api_version":"2010-04-01",
	"body":"Call mom","date_created":"Tue, 04 Mar 2025 15:04:05 +0000","direction":"outbound-api","error_code":null,
	"error_message":null,"from":"+15017122661","messaging_service_sid":null,"num_media":"0","num_segments":"1",
	"price":null,"sid":"SM1234567890abcdef1234567890abcdef","status":"queued","to":"+14155552671",
	"uri":"/2010-04-01/Accounts/` + twilioAccount + `/Messages/SM1234567890abcdef1234567890abcdef.json"}`}

// newTwilio is a client of f whose retries are apitest.Request instead of waited for.
func newTwilio(t *testing.T, f *apitest.FakeAPI, w *apitest.Waits, configure ...func(*notify.TwilioConfig)) *notify.Twilio {
	t.Helper()
	cfg := notify.TwilioConfig{
		AccountSID: twilioAccount, AuthToken: twilioToken, From: twilioFrom, BaseURL: f.Srv.URL, HTTPClient: f.Srv.Client(),
		Retry: notify.RetryPolicy{Sleep: w.Sleep}, Now: now, Logger: slog.New(slog.DiscardHandler),
	}
	for _, c := range configure {
		c(&cfg)
	}
	tw, err := notify.NewTwilio(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tw
}

func TestTwilioSendsTheDocumentedMessagesRequest(t *testing.T) {
	for _, tc := range []struct {
		name      string
		configure func(*notify.TwilioConfig)
		sms       notify.SMS
		wantUser  string
		wantForm  url.Values
	}{
		{
			name:     "from the configured number",
			sms:      notify.SMS{To: "+14155552671", Body: "Call mom"},
			wantUser: twilioAccount,
			wantForm: url.Values{"To": {"+14155552671"}, "From": {twilioFrom}, "Body": {"Call mom"}},
		},
		{
			name:      "through a messaging service, which wins over From",
			configure: func(c *notify.TwilioConfig) { c.MessagingServiceSID = "MG0123" },
			sms:       notify.SMS{To: "+14155552671", Body: "Dentist at 3pm & bring the card"},
			wantUser:  twilioAccount,
			wantForm:  url.Values{"To": {"+14155552671"}, "MessagingServiceSid": {"MG0123"}, "Body": {"Dentist at 3pm & bring the card"}},
		},
		{
			name:      "a message's own sender wins",
			configure: func(c *notify.TwilioConfig) { c.MessagingServiceSID = "MG0123" },
			sms:       notify.SMS{To: "whatsapp:+14155552671", From: "whatsapp:+15005550006", Body: "Hi"},
			wantUser:  twilioAccount,
			wantForm:  url.Values{"To": {"whatsapp:+14155552671"}, "From": {"whatsapp:+15005550006"}, "Body": {"Hi"}},
		},
		{
			name:      "authenticated by an API key",
			configure: func(c *notify.TwilioConfig) { c.APIKey = "SK0123" },
			sms:       notify.SMS{To: "+442071838750", Body: "Ünïcödé ✓"},
			wantUser:  "SK0123",
			wantForm:  url.Values{"To": {"+442071838750"}, "From": {twilioFrom}, "Body": {"Ünïcödé ✓"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := apitest.NewFakeAPI(t, created)
			var configure []func(*notify.TwilioConfig)
			if tc.configure != nil {
				configure = append(configure, tc.configure)
			}
			res, err := newTwilio(t, f, &apitest.Waits{}, configure...).SendSMS(t.Context(), tc.sms)
			if err != nil {
				t.Fatal(err)
			}
			if want := (notify.SMSResult{SID: "SM1234567890abcdef1234567890abcdef", Status: "queued"}); res != want {
				t.Errorf("result %+v, want %+v", res, want)
			}
			req := f.Only(t)
			if want := "/2010-04-01/Accounts/" + twilioAccount + "/Messages.json"; req.Method != http.MethodPost || req.Path != want {
				t.Errorf("%s %s, want POST %s", req.Method, req.Path, want)
			}
			apitest.WantHeader(t, req.Header, map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
			r := &http.Request{Header: req.Header}
			if user, pass, ok := r.BasicAuth(); !ok || user != tc.wantUser || pass != twilioToken {
				t.Errorf("basic auth %q:%q (%v), want %q and the token", user, pass, ok, tc.wantUser)
			}
			if got := req.Form(t); !reflect.DeepEqual(got, tc.wantForm) {
				t.Errorf("form %v, want %v", got, tc.wantForm)
			}
		})
	}
}

func TestTwilioRefusesBadInputBeforeSending(t *testing.T) {
	for _, tc := range []struct {
		name string
		sms  notify.SMS
		want string
	}{
		{"no recipient", notify.SMS{Body: "hi"}, "no recipient phone number"},
		{"local number", notify.SMS{To: "4155552671", Body: "hi"}, "not an E.164 phone number"},
		{"letters", notify.SMS{To: "+1415CALLME", Body: "hi"}, "not an E.164 phone number"},
		{"too many digits", notify.SMS{To: "+1234567890123456", Body: "hi"}, "not an E.164 phone number"},
		{"empty body", notify.SMS{To: "+14155552671", Body: " \n "}, "the text message is empty"},
		{"body too long", notify.SMS{To: "+14155552671", Body: strings.Repeat("é", notify.MaxSMSLength+1)}, "has 1601 characters, more than 1600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := apitest.NewFakeAPI(t, created)
			_, err := newTwilio(t, f, &apitest.Waits{}).SendSMS(t.Context(), tc.sms)
			if !errors.Is(err, notify.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrInvalid saying %q", err, tc.want)
			}
			if n := len(f.Requests()); n != 0 {
				t.Errorf("%d requests were sent for bad input", n)
			}
		})
	}
	t.Run("the longest body is sent", func(t *testing.T) {
		f := apitest.NewFakeAPI(t, created)
		if _, err := newTwilio(t, f, &apitest.Waits{}).SendSMS(t.Context(), notify.SMS{To: "+14155552671", Body: strings.Repeat("é", notify.MaxSMSLength)}); err != nil {
			t.Fatal(err)
		}
		f.Only(t)
	})
}

func TestNewTwilioChecksItsConfiguration(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  notify.TwilioConfig
		want string
	}{
		{"no account", notify.TwilioConfig{AuthToken: "t", From: twilioFrom}, "account SID is required"},
		{"no token", notify.TwilioConfig{AccountSID: twilioAccount, From: twilioFrom}, "auth token is required"},
		{"no sender", notify.TwilioConfig{AccountSID: twilioAccount, AuthToken: "t"}, "a sender (From or MessagingServiceSID) is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := notify.NewTwilio(tc.cfg)
			if !errors.Is(err, notify.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrInvalid saying %q", err, tc.want)
			}
		})
	}
}

func TestTwilioFailuresAndRetries(t *testing.T) {
	twilioError := func(status, code int, message string, header map[string]string) apitest.Reply {
		return apitest.Reply{Status: status, Header: header, Body: fmt.Sprintf(`{"code":%d,"message":%q,"more_info":"https://www.twilio.com/docs/errors/%d","status":%d}`, code, message, code, status)}
	}
	for _, tc := range []struct {
		name         string
		replies      []apitest.Reply
		wantRequests int
		wantWaits    []time.Duration
		// wantErr nil means the send must succeed in the end; its Err is checked for presence only.
		wantErr   *notify.TwilioError
		retryable bool
	}{
		{
			name:         "400 invalid number is not retried",
			replies:      []apitest.Reply{twilioError(400, 21211, "The 'To' number +15555555555 is not a valid phone number.", nil)},
			wantRequests: 1,
			wantErr:      &notify.TwilioError{StatusCode: 400, Code: 21211, Message: "The 'To' number +15555555555 is not a valid phone number.", MoreInfo: "https://www.twilio.com/docs/errors/21211"},
		},
		{
			name:         "401 is not retried",
			replies:      []apitest.Reply{twilioError(401, 20003, "Authenticate", nil)},
			wantRequests: 1,
			wantErr:      &notify.TwilioError{StatusCode: 401, Code: 20003, Message: "Authenticate", MoreInfo: "https://www.twilio.com/docs/errors/20003"},
		},
		{
			name:         "429 waits as long as Retry-After says",
			replies:      []apitest.Reply{twilioError(429, 20429, "Too Many Requests", map[string]string{"Retry-After": "2"}), created},
			wantRequests: 2,
			wantWaits:    []time.Duration{2 * time.Second},
		},
		{
			name:         "429 without Retry-After backs off",
			replies:      []apitest.Reply{twilioError(429, 20429, "Too Many Requests", nil), twilioError(429, 20429, "Too Many Requests", nil), created},
			wantRequests: 3,
			wantWaits:    []time.Duration{time.Second, 2 * time.Second},
		},
		{
			name:         "500 that is not JSON is retried, then reported",
			replies:      []apitest.Reply{{Status: 500, Body: "<html>Internal Server Error</html>"}},
			wantRequests: 3,
			wantWaits:    []time.Duration{time.Second, 2 * time.Second},
			wantErr:      &notify.TwilioError{StatusCode: 500, Message: "<html>Internal Server Error</html>"},
			retryable:    true,
		},
		{
			name:         "a created message with an unreadable answer is not sent twice",
			replies:      []apitest.Reply{{Status: 201, Body: `{"sid": "SM12`}},
			wantRequests: 1,
			wantErr:      &notify.TwilioError{StatusCode: 201, Message: "unreadable answer, the message may have been sent"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := apitest.NewFakeAPI(t, tc.replies...)
			w := &apitest.Waits{}
			res, err := newTwilio(t, f, w).SendSMS(t.Context(), notify.SMS{To: "+14155552671", Body: "Call mom"})
			if n := len(f.Requests()); n != tc.wantRequests {
				t.Errorf("%d requests, want %d", n, tc.wantRequests)
			}
			w.Want(t, tc.wantWaits...)
			if tc.wantErr == nil {
				if err != nil || res.SID == "" {
					t.Fatalf("SendSMS = %+v, %v; want success", res, err)
				}
				return
			}
			var te *notify.TwilioError
			if !errors.As(err, &te) {
				t.Fatalf("err = %v, want a *TwilioError", err)
			}
			got := *te
			got.Err = nil
			if !reflect.DeepEqual(&got, tc.wantErr) {
				t.Errorf("error %#v\nwant %#v", &got, tc.wantErr)
			}
			if te.Retryable() != tc.retryable {
				t.Errorf("Retryable() = %v, want %v", te.Retryable(), tc.retryable)
			}
		})
	}
}

func TestTwilioErrorMessages(t *testing.T) {
	for _, tc := range []struct {
		err  *notify.TwilioError
		want string
	}{
		{&notify.TwilioError{StatusCode: 400, Code: 21211, Message: "The 'To' number is not valid."}, "twilio: HTTP 400: The 'To' number is not valid. (code 21211)"},
		{&notify.TwilioError{StatusCode: 503}, "twilio: HTTP 503: Service Unavailable"},
		{&notify.TwilioError{StatusCode: 201, Message: "unreadable answer", Err: errors.New("unexpected end of JSON input")}, "twilio: HTTP 201: unreadable answer: unexpected end of JSON input"},
		{&notify.TwilioError{Err: context.Canceled}, "twilio: context canceled"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestTwilioStopsWhenTheContextEnds(t *testing.T) {
	srv, arrived := apitest.Hanging(t)
	tw, err := notify.NewTwilio(notify.TwilioConfig{AccountSID: twilioAccount, AuthToken: twilioToken, From: twilioFrom, BaseURL: srv.URL, HTTPClient: srv.Client(),
		Retry: notify.RetryPolicy{Sleep: func(context.Context, time.Duration) error { t.Error("a cancelled send was retried"); return nil }}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-arrived
		cancel()
	}()
	_, err = tw.SendSMS(ctx, notify.SMS{To: "+14155552671", Body: "Call mom"})
	var te *notify.TwilioError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &te) || te.StatusCode != 0 || te.Retryable() {
		t.Fatalf("err = %#v, want a non-retryable *TwilioError wrapping context.Canceled", err)
	}
}

func TestTwilioKeepsTheTokenSecret(t *testing.T) {
	cfg := notify.TwilioConfig{AccountSID: twilioAccount, AuthToken: twilioToken, From: twilioFrom}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "twilio", cfg)
	f := apitest.NewFakeAPI(t, apitest.Reply{Status: 401, Body: `{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}`})
	_, err := newTwilio(t, f, &apitest.Waits{}).SendSMS(t.Context(), notify.SMS{To: "+14155552671", Body: "x"})
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), logged.String(), err.Error()} {
		if strings.Contains(s, twilioToken) {
			t.Errorf("the auth token shows in %q", s)
		}
	}
}
