package notify_test

import (
	"encoding/json"
	"errors"
	"github.com/dartmouth-gw/dartmouth/agents/pa/internal/apitest"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dartmouth-gw/dartmouth/agents/pa/notify"
)

// providers are a SendGrid and a Twilio server, with clients for them.
type providers struct {
	mail, sms *apitest.FakeAPI
	email     *notify.SendGrid
	texts     *notify.Twilio
}

func newProviders(t *testing.T, mailReply, smsReply apitest.Reply) *providers {
	t.Helper()
	p := &providers{mail: apitest.NewFakeAPI(t, mailReply), sms: apitest.NewFakeAPI(t, smsReply)}
	p.email = newSendGrid(t, p.mail, &apitest.Waits{})
	p.texts = newTwilio(t, p.sms, &apitest.Waits{})
	return p
}

// sentEmail decodes the one email the SendGrid server got.
func (p *providers) sentEmail(t *testing.T) (to, subject string, content []map[string]string) {
	t.Helper()
	var body struct {
		Personalizations []struct {
			To []struct{ Email string }
		}
		Subject string
		Content []map[string]string
	}
	if err := json.Unmarshal(p.mail.Only(t).Body, &body); err != nil {
		t.Fatal(err)
	}
	return body.Personalizations[0].To[0].Email, body.Subject, body.Content
}

func TestNotifierSendsOnEveryChannelTheRecipientHas(t *testing.T) {
	for _, tc := range []struct {
		name        string
		msg         notify.Message
		wantSubject string // "" means no email
		wantSMS     string // "" means no text message
	}{
		{
			name:        "email and SMS",
			msg:         notify.Message{Email: "ann@example.com", Phone: "+14155552671", Subject: "Call mom", Text: "It's 5pm."},
			wantSubject: "Call mom",
			wantSMS:     "Call mom: It's 5pm.",
		},
		{
			name:        "email only, with the default subject",
			msg:         notify.Message{Email: "ann@example.com", Text: "Call mom"},
			wantSubject: "Reminder",
		},
		{
			name:    "SMS only, without a subject",
			msg:     notify.Message{Phone: "+14155552671", Text: "Call mom"},
			wantSMS: "Call mom",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProviders(t, accepted, created)
			n := notify.NewNotifier(notify.NotifierConfig{Email: p.email, SMS: p.texts, Logger: slog.New(slog.DiscardHandler)})
			res, err := n.Notify(t.Context(), tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			want := notify.Result{}
			if tc.wantSubject != "" {
				want.EmailSent, want.EmailID = true, "msg-1"
				to, subject, content := p.sentEmail(t)
				if to != tc.msg.Email || subject != tc.wantSubject || !reflect.DeepEqual(content, []map[string]string{{"type": "text/plain", "value": tc.msg.Text}}) {
					t.Errorf("emailed %s %q %v, want %s %q and the text", to, subject, content, tc.msg.Email, tc.wantSubject)
				}
			} else if n := len(p.mail.Requests()); n != 0 {
				t.Errorf("%d emails sent, want none", n)
			}
			if tc.wantSMS != "" {
				want.SMSSent, want.SMS = true, notify.SMSResult{SID: "SM1234567890abcdef1234567890abcdef", Status: "queued"}
				form := p.sms.Only(t).Form(t)
				if form.Get("To") != tc.msg.Phone || form.Get("Body") != tc.wantSMS {
					t.Errorf("texted %v, want %s %q", form, tc.msg.Phone, tc.wantSMS)
				}
			} else if n := len(p.sms.Requests()); n != 0 {
				t.Errorf("%d text messages sent, want none", n)
			}
			if res != want {
				t.Errorf("result %+v, want %+v", res, want)
			}
		})
	}
}

func TestNotifierWithNowhereToSend(t *testing.T) {
	p := newProviders(t, accepted, created)
	for _, tc := range []struct {
		name string
		cfg  notify.NotifierConfig
		msg  notify.Message
	}{
		{"nothing configured", notify.NotifierConfig{}, notify.Message{Email: "ann@example.com", Phone: "+14155552671", Text: "hi"}},
		{"email configured, only a phone number", notify.NotifierConfig{Email: p.email}, notify.Message{Phone: "+14155552671", Text: "hi"}},
		{"SMS configured, only an email address", notify.NotifierConfig{SMS: p.texts}, notify.Message{Email: "ann@example.com", Text: "hi"}},
		{"no address at all", notify.NotifierConfig{Email: p.email, SMS: p.texts}, notify.Message{Text: "hi"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := notify.NewNotifier(tc.cfg).Notify(t.Context(), tc.msg); !errors.Is(err, notify.ErrNoChannel) {
				t.Errorf("err = %v, want ErrNoChannel", err)
			}
		})
	}
	if n := len(p.mail.Requests()) + len(p.sms.Requests()); n != 0 {
		t.Errorf("%d requests sent, want none", n)
	}
}

func TestNotifierRefusesAnEmptyMessage(t *testing.T) {
	p := newProviders(t, accepted, created)
	n := notify.NewNotifier(notify.NotifierConfig{Email: p.email, SMS: p.texts})
	_, err := n.Notify(t.Context(), notify.Message{Email: "ann@example.com", Phone: "+14155552671", Subject: "Reminder", Text: "  "})
	if !errors.Is(err, notify.ErrInvalid) {
		t.Errorf("err = %v, want ErrInvalid", err)
	}
	if n := len(p.mail.Requests()) + len(p.sms.Requests()); n != 0 {
		t.Errorf("%d requests sent, want none", n)
	}
}

func TestNotifierSendsSMSWhenEmailFails(t *testing.T) {
	p := newProviders(t, apitest.Reply{Status: http.StatusUnauthorized, Body: `{"errors":[{"message":"bad key"}]}`}, created)
	n := notify.NewNotifier(notify.NotifierConfig{Email: p.email, SMS: p.texts, Logger: slog.New(slog.DiscardHandler)})
	res, err := n.Notify(t.Context(), notify.Message{Email: "ann@example.com", Phone: "+14155552671", Text: "Call mom"})
	var se *notify.SendGridError
	if !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(err.Error(), "email: ") {
		t.Fatalf("err = %v, want the email's 401", err)
	}
	if res.EmailSent || !res.SMSSent || res.SMS.SID == "" {
		t.Errorf("result %+v, want the SMS sent and the email not", res)
	}
}

func TestNotifierReportsARecipientAProviderWouldRefuse(t *testing.T) {
	p := newProviders(t, accepted, created)
	n := notify.NewNotifier(notify.NotifierConfig{Email: p.email, SMS: p.texts, Logger: slog.New(slog.DiscardHandler)})
	res, err := n.Notify(t.Context(), notify.Message{Email: "ann@example.com", Phone: "555-1234", Text: "Call mom"})
	if !errors.Is(err, notify.ErrInvalid) || !strings.HasPrefix(err.Error(), "sms: ") {
		t.Fatalf("err = %v, want the phone number refused", err)
	}
	if !res.EmailSent || res.SMSSent {
		t.Errorf("result %+v, want the email sent and the SMS not", res)
	}
	if n := len(p.sms.Requests()); n != 0 {
		t.Errorf("%d text messages sent, want none", n)
	}
}

func TestNotifierCutsLongTextsToTheSMSLimit(t *testing.T) {
	p := newProviders(t, accepted, created)
	n := notify.NewNotifier(notify.NotifierConfig{SMS: p.texts, Logger: slog.New(slog.DiscardHandler)})
	long := strings.Repeat("ö", 2000)
	if _, err := n.Notify(t.Context(), notify.Message{Phone: "+14155552671", Subject: "Notes", Text: long}); err != nil {
		t.Fatal(err)
	}
	body := p.sms.Only(t).Form(t).Get("Body")
	if utf8.RuneCountInString(body) != notify.MaxSMSLength || !strings.HasPrefix(body, "Notes: ööö") || !strings.HasSuffix(body, "ö…") {
		t.Errorf("texted %d characters %q…, want %d ending in an ellipsis", utf8.RuneCountInString(body), body[:20], notify.MaxSMSLength)
	}
}

func TestNotifierChannels(t *testing.T) {
	p := newProviders(t, accepted, created)
	for _, tc := range []struct {
		cfg  notify.NotifierConfig
		want []string
	}{
		{notify.NotifierConfig{}, nil},
		{notify.NotifierConfig{Email: p.email}, []string{"email"}},
		{notify.NotifierConfig{SMS: p.texts}, []string{"sms"}},
		{notify.NotifierConfig{Email: p.email, SMS: p.texts}, []string{"email", "sms"}},
	} {
		if got := notify.NewNotifier(tc.cfg).Channels(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Channels() = %v, want %v", got, tc.want)
		}
	}
}
