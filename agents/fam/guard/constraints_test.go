package guard_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents/fam/guard"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func mustConstraints(t *testing.T, cfg guard.Config) *guard.Constraints {
	t.Helper()
	c, err := guard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  guard.Config
		ok   bool
	}{
		{"zero value", guard.Config{}, true},
		{"allow prices", guard.Config{Allow: []guard.Kind{guard.Prices}}, true},
		{"unknown allow", guard.Config{Allow: []guard.Kind{"weather"}}, false},
		{"unknown redirect", guard.Config{Redirects: map[guard.Kind][]string{"weather": {"no"}}}, false},
		{"empty redirects", guard.Config{Redirects: map[guard.Kind][]string{guard.Prices: {}}}, false},
		{"blank redirect", guard.Config{Redirects: map[guard.Kind][]string{guard.Prices: {""}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if _, err := guard.New(tt.cfg); (err == nil) != tt.ok {
				t.Errorf("New() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestCheckRequest(t *testing.T) {
	c := mustConstraints(t, guard.Config{})
	tests := []struct {
		message string
		want    guard.Kind // "" when nothing applies
	}{
		{"I want a refund", guard.Refunds},
		{"Can I get my money back?", guard.Refunds},
		{"please cancel my order", guard.Refunds},
		{"how much does the premium plan cost?", guard.Prices},
		{"What's the price of the pro plan?", guard.Prices},
		{"what are your fees", guard.Prices},
		{"do you have any discount codes?", guard.Discounts},
		{"is there a student price?", guard.Discounts},
		{"when will my order arrive?", guard.Delivery},
		{"Where is my parcel?", guard.Delivery},
		{"can you give me a delivery date", guard.Delivery},
		{"can I sue my landlord?", guard.Legal},
		{"is it legal to record calls?", guard.Legal},
		{"what medication should I take for a headache?", guard.Medical},
		{"is it safe to take ibuprofen with alcohol?", guard.Medical},
		{"what's the right dose of paracetamol?", guard.Medical},
		// Nothing to redirect.
		{"what are the voice tiers?", ""},
		{"I'm allergic to peanuts", ""},
		{"what am I allergic to?", ""},
		{"how do I reset my password?", ""},
		{"hello", ""},
		{"", ""},
		{"the delivery of the keynote was great", ""},
		{"I'm a lawyer", ""},
		{"how do budgets and costs work?", ""},
		{"I need a lawyer", guard.Legal},
		{"what are your prices?", guard.Prices},
		{"what does the cloud tier cost?", guard.Prices},
	}
	for _, tt := range tests {
		t.Run(tt.message, func(t *testing.T) {
			got, ok := c.CheckRequest(tt.message)
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("CheckRequest(%q) = %q %v, want %q", tt.message, got, ok, tt.want)
			}
		})
	}
}

func TestCheckReply(t *testing.T) {
	c := mustConstraints(t, guard.Config{})
	tests := []struct {
		reply string
		want  guard.Kind
	}{
		{"The pro plan costs $20 a month.", guard.Prices},
		{"It's only 15 dollars.", guard.Prices},
		{"That will be €9.99.", guard.Prices},
		{"You can get 20% off with code SPRING.", guard.Discounts},
		{"Use the discount code WELCOME.", guard.Discounts},
		{"You'll get a full refund within a week.", guard.Refunds},
		{"We will process your refund today.", guard.Refunds},
		{"Your order will arrive by Friday.", guard.Delivery},
		{"It ships tomorrow.", guard.Delivery},
		{"Your package will be delivered within 3 business days.", guard.Delivery},
		{"We offer next-day delivery.", guard.Delivery},
		{"You should sue them for breach of contract.", guard.Legal},
		{"That's perfectly legal.", guard.Legal},
		{"You should take ibuprofen for that.", guard.Medical},
		{"Try ibuprofen.", guard.Medical},
		{"Take 400 mg every six hours.", guard.Medical},
		{"It sounds like a sinus infection.", guard.Medical},
		{"I guarantee it will work.", guard.Promises},
		{"Someone will call you tomorrow.", guard.Promises},
		// Refusals and harmless sentences.
		{"I can't quote prices, but the team can.", ""},
		{"I can't promise it will arrive by Monday.", ""},
		{"I'm not able to give you a refund.", ""},
		{"The verification email should arrive within 5 minutes.", ""},
		{"The free plan allows 20 requests per hour.", ""},
		{"Dartmouth routes speech through tiers to keep costs down.", ""},
		{"Open settings, then Reset.", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.reply, func(t *testing.T) {
			got, ok := c.CheckReply(tt.reply)
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("CheckReply(%q) = %q %v, want %q", tt.reply, got, ok, tt.want)
			}
		})
	}
}

func TestAllowLiftsAConstraint(t *testing.T) {
	c := mustConstraints(t, guard.Config{Allow: []guard.Kind{guard.Prices, guard.Delivery}})
	if slices.Contains(c.Active(), guard.Prices) || slices.Contains(c.Active(), guard.Delivery) || !slices.Contains(c.Active(), guard.Refunds) {
		t.Fatalf("Active() = %v", c.Active())
	}
	if _, ok := c.CheckRequest("how much does it cost?"); ok {
		t.Error("an allowed topic was redirected")
	}
	if _, ok := c.CheckReply("It costs $20 and arrives by Friday."); ok {
		t.Error("an allowed reply was flagged")
	}
	if k, ok := c.CheckRequest("I want a refund"); !ok || k != guard.Refunds {
		t.Error("the other constraints must still apply")
	}
	for _, rule := range c.Rules() {
		if strings.Contains(rule, "prices") || strings.Contains(rule, "delivery") {
			t.Errorf("rules still state an allowed constraint: %q", rule)
		}
	}
	if len(c.Rules()) != len(c.Active()) {
		t.Errorf("one rule per active constraint: %d rules, %d active", len(c.Rules()), len(c.Active()))
	}
}

func TestRedirects(t *testing.T) {
	c := mustConstraints(t, guard.Config{Team: "the Acme support team"})
	for _, k := range guard.Kinds() {
		first, second := c.Redirect(k, 0), c.Redirect(k, 1)
		if first == "" || first == second {
			t.Errorf("%s: redirects %q and %q should be two different wordings", k, first, second)
		}
		if c.Redirect(k, 2) != first || c.Redirect(k, -1) != second {
			t.Errorf("%s: variants must wrap", k)
		}
		if strings.Contains(first+second, "{team}") || strings.Contains(first+second, "{Team}") {
			t.Errorf("%s: placeholder left in %q / %q", k, first, second)
		}
		// A redirect never breaks a constraint itself.
		if bad, ok := c.CheckReply(first + " " + second); ok {
			t.Errorf("%s: the redirect breaks %s", k, bad)
		}
	}
	if !strings.Contains(c.Redirect(guard.Refunds, 0), "the Acme support team") {
		t.Errorf("team not named: %q", c.Redirect(guard.Refunds, 0))
	}
	custom := mustConstraints(t, guard.Config{Redirects: map[guard.Kind][]string{guard.Prices: {"Ask {team} for a quote."}}})
	if got := custom.Redirect(guard.Prices, 5); got != "Ask our team for a quote." {
		t.Errorf("custom redirect = %q", got)
	}
}
