// Package guard keeps an agent's replies inside its business rules: constraints on what it may
// talk about (prices, discounts, refunds, delivery promises, legal and medical advice, promises
// on the company's behalf), checked on the user's request and on the reply, each with a safe
// redirect; and a response validator that checks a streamed reply sentence by sentence
// (length, promises, invented figures) before it reaches the user.
package guard

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Kind names a constraint.
type Kind string

// Constraints every agent has unless its config allows the topic.
const (
	Prices    Kind = "prices"
	Discounts Kind = "discounts"
	Refunds   Kind = "refunds"
	Delivery  Kind = "delivery"
	Legal     Kind = "legal"
	Medical   Kind = "medical"
	// Promises are guarantees on the company's behalf ("I guarantee", "someone will call you").
	// It is checked on replies only: users may ask for anything.
	Promises Kind = "promises"
)

// Kinds lists every constraint, in the order they are checked.
func Kinds() []Kind { return []Kind{Refunds, Discounts, Prices, Delivery, Legal, Medical, Promises} }

// Config says which constraints apply to an agent and how it redirects.
type Config struct {
	// Allow lifts constraints for this agent: a sales agent may allow Prices. Default none:
	// every constraint applies.
	Allow []Kind
	// Redirects replaces the built-in redirect sentences of a kind; "{team}" in them is
	// replaced by Team. Several sentences are used in turn, so a user who asks again gets
	// another wording. Default the built-in ones.
	Redirects map[Kind][]string
	// Team names who can help, in redirects. Default "our team".
	Team string
}

// Validate reports unknown kinds and empty redirects.
func (c Config) Validate() error {
	for _, k := range c.Allow {
		if !slices.Contains(Kinds(), k) {
			return fmt.Errorf("guard: unknown constraint %q in Allow (known: %v)", k, Kinds())
		}
	}
	for k, texts := range c.Redirects {
		if !slices.Contains(Kinds(), k) {
			return fmt.Errorf("guard: unknown constraint %q in Redirects (known: %v)", k, Kinds())
		}
		if len(texts) == 0 || slices.Contains(texts, "") {
			return fmt.Errorf("guard: redirects of %q must be non-empty sentences", k)
		}
	}
	return nil
}

// Constraints are one agent's active constraints. They hold no per-conversation state and are
// safe for concurrent use.
type Constraints struct {
	team      string
	active    []*constraint
	redirects map[Kind][]string
}

type constraint struct {
	kind Kind
	// rule is the line the system prompt gets.
	rule string
	// ask matches a user message that asks for the topic.
	ask *regexp.Regexp
	// give match a reply that gives it: quotes a price, promises a date.
	give []*regexp.Regexp
	// except, when it matches the sentence, clears it ("the email should arrive in a
	// minute" promises no parcel).
	except    *regexp.Regexp
	redirects []string
}

// New builds an agent's constraints. Unknown kinds are an error (see Config.Validate).
func New(cfg Config) (*Constraints, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	team := cfg.Team
	if strings.TrimSpace(team) == "" {
		team = "our team"
	}
	c := &Constraints{team: team, redirects: map[Kind][]string{}}
	for _, b := range builtins {
		if slices.Contains(cfg.Allow, b.kind) {
			continue
		}
		b := b
		if texts, ok := cfg.Redirects[b.kind]; ok {
			b.redirects = texts
		}
		c.active = append(c.active, &b)
		c.redirects[b.kind] = b.redirects
	}
	return c, nil
}

// Active lists the constraints that apply, in checking order.
func (c *Constraints) Active() []Kind {
	out := make([]Kind, len(c.active))
	for i, k := range c.active {
		out[i] = k.kind
	}
	return out
}

// Rules are the lines of the system prompt that state the active constraints.
func (c *Constraints) Rules() []string {
	out := make([]string, 0, len(c.active))
	for _, k := range c.active {
		out = append(out, k.rule)
	}
	return out
}

// CheckRequest reports the first active constraint a user message asks about.
func (c *Constraints) CheckRequest(message string) (Kind, bool) {
	norm := normalize(message)
	for _, k := range c.active {
		if k.ask != nil && k.ask.MatchString(norm) {
			return k.kind, true
		}
	}
	return "", false
}

// CheckReply reports the first active constraint a piece of reply breaks: a price quoted, a
// delivery date promised. A refusal ("I can't promise a delivery date") breaks nothing.
func (c *Constraints) CheckReply(text string) (Kind, bool) {
	norm := normalize(text)
	for _, k := range c.active {
		if k.except != nil && k.except.MatchString(norm) {
			continue
		}
		for _, re := range k.give {
			for _, loc := range re.FindAllStringIndex(norm, -1) {
				if !refused(norm, loc[0]) {
					return k.kind, true
				}
			}
		}
	}
	return "", false
}

// refusal is a negation a few words before a match: "I can't promise it will arrive by
// Monday" promises nothing.
var refusal = regexp.MustCompile(`\b(can't|cannot|can not|unable to|not able to|won't|will not|don't|do not|never|not allowed to|no one can|nobody can|not in a position to|rather not)(?:\s+[a-z']+){0,4}\s*$`)

func refused(norm string, at int) bool {
	return refusal.MatchString(norm[max(0, at-60):at])
}

// Redirect is the safe reply for a constraint; variant picks among its wordings (any int;
// it wraps).
func (c *Constraints) Redirect(k Kind, variant int) string {
	texts := c.redirects[k]
	if len(texts) == 0 {
		texts = defaultRedirects[k]
	}
	if len(texts) == 0 {
		return ""
	}
	if variant < 0 {
		variant = -variant
	}
	text := texts[variant%len(texts)]
	text = strings.ReplaceAll(text, "{Team}", capitalizeFirst(c.team))
	return strings.ReplaceAll(text, "{team}", c.team)
}

func capitalizeFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

var (
	spaces = regexp.MustCompile(`\s+`)
	quotes = strings.NewReplacer("’", "'", "‘", "'")
)

func normalize(s string) string {
	s = strings.ToLower(quotes.Replace(s))
	return strings.TrimSpace(spaces.ReplaceAllString(s, " "))
}

func re(pattern string) *regexp.Regexp { return regexp.MustCompile(pattern) }

const (
	weekday = `(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)`
	month   = `(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*`
	drugs   = `(?:ibuprofen|paracetamol|acetaminophen|aspirin|naproxen|codeine|antibiotics?|antihistamines?|medication|medicine|pills?|tablets?|painkillers?|[a-z]+(?:cillin|mycin|prazole|statin|olol|pril|sartan|azepam|oxetine|tidine))`
)

var defaultRedirects = map[Kind][]string{
	Prices: {
		"I can't quote prices here, but {team} can give you exact, up-to-date pricing. Is there anything else I can help with meanwhile?",
		"Prices aren't something I can give you in this chat. {Team} will have the current figures for you. Anything else I can help with?",
	},
	Discounts: {
		"I'm not able to offer or confirm discounts, but {team} can tell you about any current offers. Is there anything else I can help with?",
		"Discounts and deals aren't something I can promise here. {Team} knows what offers are running right now. Can I help with anything else?",
	},
	Refunds: {
		"I can't arrange or promise refunds myself, but {team} can look at your order and explain your options. Is there anything else I can help with?",
		"Refunds, returns and cancellations are handled by {team}, who can see your order and tell you what's possible. Anything else I can do for you?",
	},
	Delivery: {
		"I can't promise delivery dates, but {team} can check where your order is and give you an accurate update. Is there anything else I can help with?",
		"I don't have delivery information I could promise you. {Team} can track your order and tell you exactly when to expect it. Anything else?",
	},
	Legal: {
		"I can't give legal advice. For something like this, a qualified lawyer is the right person to ask. Is there anything else I can help with?",
		"That's a legal question, and I'm not able to advise on it. A solicitor or lawyer can look at your situation properly. Can I help with anything else?",
	},
	Medical: {
		"I can't give medical advice. Please ask a doctor or pharmacist, and if it's urgent, contact your local emergency services. Is there anything else I can help with?",
		"That's a question for a doctor or pharmacist, not for me: I can't give medical advice. If it's urgent, please contact emergency services. Anything else I can do?",
	},
	Promises: {
		"I can't make promises about that myself, but {team} can confirm what's possible.",
		"I'd rather not promise something I can't guarantee; {team} can confirm it for you.",
	},
}

// builtins are the constraints in checking order. Requests are matched on the lowercased
// message; replies sentence by sentence.
var builtins = []constraint{
	{
		kind: Refunds, rule: "Never promise, arrange or discuss the terms of refunds, returns or cancellations; direct the user to the team.",
		ask: re(`\b(refunds?|refunded|refunding|money back|reimburse(?:ment)?|chargeback|return (?:it|this|my|the) (?:order|item|product|purchase|parcel)|cancel (?:my|the|an) order)\b`),
		give: []*regexp.Regexp{
			re(`\byou(?:'ll| will| can| would|'d)? (?:get|receive|be (?:given|issued|sent)|have) (?:a |an |your )?(?:full |partial )?refund\b`),
			re(`\b(?:i|we)(?:'ll| will| can| have| 've| am| are)? (?:process|issue|arrange|send|give|approve|processed|issued|arranged|sent|approved|processing|issuing) (?:you )?(?:a |an |your )?(?:full |partial )?refund\b`),
			re(`\brefund (?:has been|will be|is being|was) (?:issued|processed|approved|sent)\b`),
			re(`\byou(?:'re| are) (?:eligible|entitled) (?:for|to) (?:a )?(?:full |partial )?refund\b`),
			re(`\b(?:get|give you|send you) (?:all )?your money back\b`),
		},
	},
	{
		kind: Discounts, rule: "Never offer or confirm discounts, coupons or deals.",
		ask: re(`\b(discounts?|coupons?|promo(?:tion(?:al)?)? codes?|vouchers?|cheaper|(?:any|a|good|better|best) deals?|on sale|sale price|% off|percent off|student price|price match)\b`),
		give: []*regexp.Regexp{
			re(`\d+(?:\.\d+)?\s?(?:%|percent) (?:off|discount)\b`),
			re(`\b(?:discount|promo|coupon|voucher) code\b`),
			re(`\b(?:i|we) can (?:give|offer|get) you (?:a |an )?(?:\d+\s?(?:%|percent) )?(?:discount|deal|reduction|coupon)\b`),
			re(`\byou(?:'ll| will| can) get (?:a |an )?(?:\d+\s?(?:%|percent) )?discount\b`),
		},
	},
	{
		kind: Prices, rule: "Never quote prices or costs; direct the user to the team for pricing.",
		// Asking what something costs, not mentioning costs: "how do budgets and costs work?"
		// is a question about a feature.
		ask: re(`\b(how much (?:is|are|does|do|would|will|for|to|money|did)|what(?:'s| is| are| was| were)? (?:the |your |its |their )?(?:price|cost|fee|rate)s? (?:of|for|on)\b|what (?:does|do|will|would) [a-z' ]{1,40} cost\b|price (?:of|for|list)\b|pricing|cost of\b|how expensive|give me a quote|quote (?:me|for)\b|is it free\b|(?:prices|price|pricing|fees|costs)\??$)`),
		give: []*regexp.Regexp{
			re(`[$€£¥₹]\s?\d`),
			re(`\b\d+(?:[.,]\d+)?\s?(?:dollars?|euros?|pounds?|usd|eur|gbp|aud|cad|cents?|bucks|quid)\b`),
			re(`\b(?:costs?|priced at|price (?:is|of)|fee (?:is|of)|charges?|for only|for just) (?:about |around |approximately |roughly |just |only )?[$€£¥₹]?\d`),
		},
	},
	{
		kind: Delivery, rule: "Never promise delivery, shipping or arrival dates or times.",
		ask: re(`\b(when (?:will|does|is|should|would) (?:it|they|my [a-z]+|the (?:order|package|parcel|delivery|item)) (?:arrive|come|get here|be delivered|ship|be shipped|be here|be dispatched)|where(?:'s| is) my (?:order|package|parcel|delivery|stuff|item|shipment)|track(?:ing)? (?:my |the )?(?:order|package|parcel|shipment)|delivery (?:date|time|estimate|status)|shipping (?:time|date|status|estimate)|how long (?:will|does|do|would) (?:delivery|shipping|it take to (?:arrive|ship|deliver|be delivered))|estimated (?:delivery|arrival)|eta)\b`),
		give: []*regexp.Regexp{
			re(`\b(?:arrive|arrives|arriving|be delivered|delivered|deliver|delivers|delivery|ship|ships|shipped|be dispatched|dispatched|get to you|reach you|be with you)\b[^.!?]{0,40}?\b(?:by|on|within|in|before|no later than|until)\s+(?:\d|` + weekday + `|tomorrow|today|tonight|next|the end|a few|a couple|two|three|four|five|six|seven|ten|` + month + `)`),
			re(`\b(?:arrive|arrives|delivered|deliver|ship|ships|shipped|dispatched)\s+(?:tomorrow|today|tonight|this (?:week|weekend|afternoon|evening)|next (?:week|day|month))\b`),
			re(`\b(?:next|same|two|2)[- ]day (?:delivery|shipping)\b`),
			re(`\bguaranteed (?:delivery|arrival)\b`),
			re(`\b(?:delivery|arrival|shipping) (?:date|time) (?:is|will be)\b`),
		},
		except: re(`\b(e-?mails?|messages?|codes?|sms|texts?|notifications?|links?|otp|verification|password reset)\b`),
	},
	{
		kind: Legal, rule: "Do not give legal advice; suggest a qualified lawyer instead.",
		ask: re(`\b(legal advice|is (?:it|this|that) (?:legal|illegal|lawful|unlawful|allowed by law|against the law)|can i sue|should i sue|sue (?:them|him|her|my|the|you|a)|lawsuit|take (?:them|him|her|it) to court|my (?:legal )?rights|legally|(?:need|get|hire|find|ask|see|call|consult|talk to|speak to) (?:a |an |my )?(?:lawyer|attorney|solicitor)|my (?:lawyer|attorney|solicitor)|contract dispute|breach of contract|liable|liability|press charges)\b`),
		give: []*regexp.Regexp{
			re(`\byou (?:should|could|can|must|may want to|have (?:a |the )?(?:right|grounds) to) (?:sue|file (?:a )?(?:lawsuit|claim|suit)|take (?:them|him|her|it|legal action)|press charges)\b`),
			re(`\b(?:this|that|it)(?:'s| is) (?:perfectly |completely |totally |definitely |probably )?(?:legal|illegal|lawful|unlawful)\b`),
			re(`\byou(?:'re| are) (?:legally )?(?:entitled to|liable|obligated|required by law)\b`),
			re(`\b(?:legally|under the law),? you\b`),
			re(`\byou have (?:a )?(?:strong |good |valid )?(?:legal )?(?:case|claim)\b`),
		},
	},
	{
		kind: Medical, rule: "Do not give medical advice, diagnoses or doses; suggest a doctor or pharmacist instead.",
		ask: re(`\b(medical advice|diagnos(?:e|is)|symptoms?|medications?|medicines?|dosage|dose|prescri(?:be|ption)|should i (?:take|see a doctor|go to (?:the )?(?:doctor|hospital|er))|is it safe to (?:take|mix|eat|drink)|side effects?|treatment for|cure for|painkillers?|antibiotics?|ibuprofen|paracetamol|acetaminophen|aspirin|how (?:much|many) [a-z ]*should i take|am i (?:sick|ill|dying)|do i have (?:a |an )?(?:[a-z]+ )?(?:infection|disease|virus|cancer|covid|flu|condition))\b`),
		give: []*regexp.Regexp{
			re(`\b(?:you should|you could|you can|try|i(?:'d| would)? recommend|i suggest|you may want to) (?:taking|to take|take) (?:some |an? |\d+\s?(?:mg|ml)? ?)?` + drugs),
			re(`\btake (?:\d+|one|two|three) (?:mg |ml )?(?:of )?` + drugs),
			re(`\b(?:try|use|you could try|you should try|i(?:'d| would) (?:recommend|suggest)) (?:some |an? )?` + drugs + `\b`),
			re(`\b\d+(?:\.\d+)?\s?(?:mg|milligrams?|ml|mcg|micrograms?)\b`),
			re(`\b(?:the )?(?:recommended |usual |normal |safe |maximum )?(?:dose|dosage) (?:is|of|for)\b`),
			re(`\byou (?:probably |likely |may |might |could |most likely )?(?:have|have got|are suffering from) (?:a |an )?(?:[a-z]+ )?(?:infection|disease|virus|syndrome|disorder|flu|covid|cancer|diabetes|migraine|concussion|fracture|allergy)\b`),
			re(`\b(?:it|this|that) (?:sounds|looks) like (?:a |an )?(?:[a-z]+ )?(?:infection|disease|virus|syndrome|disorder|flu|allergy|migraine|concussion|fracture)\b`),
			re(`\byou (?:don't|do not) need (?:to see )?a doctor\b|\bno need to see a doctor\b`),
			re(`\b(?:it's|it is|that's|that is) (?:perfectly |completely )?safe to (?:take|mix|combine)\b`),
		},
	},
	{
		kind: Promises, rule: "Do not make promises or guarantees on the company's behalf, and never say that someone will call, email or contact the user.",
		give: []*regexp.Regexp{
			re(`\b(?:i|we) (?:promise|guarantee)\b`),
			re(`\b(?:is|are|it's|that's) guaranteed\b`),
			re(`\b100% (?:sure|certain|guaranteed)\b`),
			re(`\b(?:i|we)(?:'ll| will) (?:personally )?(?:call|email|phone|contact|text|follow up with|get back to|reach out to) you\b`),
			re(`\b(?:someone|somebody|a member of (?:our|the) team|an agent|our team|the team) (?:will|is going to|'ll) (?:call|email|phone|contact|reach out to|get back to|be in touch with) you\b`),
		},
	},
}
