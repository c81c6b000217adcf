package guard

import (
	"fmt"
	"iter"
	"regexp"
	"strings"

	"github.com/dartmouth-gw/dartmouth/agents/llm"
)

// How a streamed reply is validated
//
// Replies stream, so the validator cannot wait for the whole reply without costing text
// clients the model's full generation time before their first word. It validates sentence by
// sentence instead, as the reply streams:
//
//   - Text flows through as it is generated while the sentence it belongs to carries no risk
//     marker (a digit, a currency sign, or a word such as "price", "refund", "deliver",
//     "arrive", "guarantee", "legal", "dose"). Plain prose therefore streams token by token,
//     with no added latency.
//   - From the first risk marker on, the rest of the sentence is held until the sentence ends,
//     then the whole sentence is checked: against the agent's constraints (a price quoted, a
//     delivery date promised, legal or medical advice, a promise on the company's behalf) and
//     for figures found nowhere in the conversation. A clean sentence is released at once;
//     the added latency is the time the model takes to finish that one sentence (typically
//     100-500 ms), and nothing for voice, whose speech is synthesized a sentence at a time
//     anyway.
//   - A sentence that breaks a constraint is replaced by the constraint's redirect and the
//     reply ends there (the model call is cancelled: whatever else it says is not wanted).
//     If the start of that sentence had already streamed before its first marker, the
//     redirect follows it as a spoken-style correction ("The pro plan — actually, I can't
//     quote prices…").
//   - Strict turns (HoldSentences, or a turn whose conversation touches a constrained topic:
//     orders, payments, contracts, health) hold every sentence whole, so nothing of a bad
//     sentence is ever shown; the cost is one sentence of latency for text clients.
//   - Length: once a reply passes MaxChars it ends at the end of that sentence.
//   - Figures found nowhere in the question, the conversation or the agent's knowledge are
//     suspicious: by default the reply keeps them and ends with a short caveat naming them
//     (NumbersCaveat); NumbersWithhold drops the sentences that carry them instead.

// NumberPolicy says what the validator does with figures found nowhere in the conversation.
type NumberPolicy int

const (
	// NumbersCaveat keeps the figures and ends the reply with a caveat naming them.
	NumbersCaveat NumberPolicy = iota
	// NumbersWithhold drops each sentence that carries one.
	NumbersWithhold
	// NumbersReport only reports them (Check.Report).
	NumbersReport
)

// ValidatorConfig configures the response validator.
type ValidatorConfig struct {
	// MaxChars bounds a reply: past it the reply ends at the end of the sentence. Default 1200
	// (about 200 words, where the earlier system's quality check called a reply verbose).
	MaxChars int
	// Numbers says what to do with unverifiable figures. Default NumbersCaveat.
	Numbers NumberPolicy
	// HoldSentences holds every sentence until it is complete and checked, not only the
	// sentences with a risk marker. Default false.
	HoldSentences bool
}

func (c ValidatorConfig) withDefaults() ValidatorConfig {
	if c.MaxChars <= 0 {
		c.MaxChars = 1200
	}
	return c
}

// Issue is something the validator found in a reply.
type Issue struct {
	// Kind is "constraint", "length" or "figures".
	Kind string
	// Constraint is the broken constraint, for Kind "constraint".
	Constraint Kind
	// Text is the sentence at fault.
	Text string
	// Figures are the unverifiable figures, for Kind "figures".
	Figures []string
}

// Check is the validation of one reply. Only Constraints is required.
type Check struct {
	Constraints *Constraints
	Config      ValidatorConfig
	// Known are the figures the reply may use; nil checks no figures (a calculation's result
	// is new by nature).
	Known *Numbers
	// Strict holds every sentence whole (see the package's notes on streaming).
	Strict bool
	// Variant picks the redirect's wording.
	Variant int
	// Trusted marks chunks that need no checking, such as the offline engine's curated
	// answers; from the first trusted chunk on the reply streams through unchecked.
	Trusted func(llm.Chunk) bool
	// Finish returns text to add at the end of a complete reply, given what was sent; it is
	// not called when a constraint cut the reply short.
	Finish func(sent string) string
	// Report receives each issue found.
	Report func(Issue)
	// EstimateUsage says what a reply cut short cost, since the provider's own count never
	// arrives; given the text generated so far.
	EstimateUsage func(generated string) llm.Usage
}

// maxHeldSentence bounds a held sentence that never ends: past it, it is checked as it is.
const maxHeldSentence = 600

// overrunSlack is how far past MaxChars a sentence may run before it is cut mid-way.
const overrunSlack = 300

var (
	sentenceEnd = regexp.MustCompile(`[.!?…]+["'’”)\]]*\s+|\n+`)
	// riskMarker starts holding a sentence: anything a constraint or the figures check may
	// object to. It is deliberately broad; holding costs only the rest of one sentence.
	riskMarker = regexp.MustCompile(`(?i)\d|[$€£¥₹%]|\b(pric|cost|fee|fees|charg|paid|pay|cheap|expens|afford|discount|coupon|promo|voucher|percent|sale|deal|refund|reimburs|money back|deliver|arriv|ship|dispatch|courier|tomorrow|tonight|next (week|day|month)|within|guarant|promis|legal|illegal|lawful|unlawful|sue|suing|lawsuit|court|attorney|lawyer|solicitor|entitled|liable|obligat|dose|dosage|mg|milligram|tablet|pill|medic|prescri|diagnos|infection|disease|syndrome|disorder|doctor|ibuprofen|paracetamol|acetaminophen|aspirin|antibiotic|safe to|sounds like|looks like|someone will|somebody will|we('ll| will)|i('ll| will)|the team will|our team will|call you|email you|contact you|get back to you)`)
)

// Stream validates src as it streams (see the package's notes).
func (c Check) Stream(src iter.Seq2[llm.Chunk, error]) iter.Seq2[llm.Chunk, error] {
	c.Config = c.Config.withDefaults()
	return func(yield func(llm.Chunk, error) bool) {
		f := &filter{check: c, strict: c.Strict || c.Config.HoldSentences}
		// The provider's usage is held back and sent with the reply's last text, after what
		// the validator adds at the end.
		var usage *llm.Usage
		last := func(u *llm.Usage) llm.Chunk {
			out := f.chunk(f.take())
			out.Usage = u
			return out
		}
		for chunk, err := range src {
			if err != nil {
				if !f.stopped {
					f.completePending()
				}
				if out := last(usage); (out.Text != "" || out.Usage != nil) && !yield(out, nil) {
					return
				}
				yield(llm.Chunk{}, err)
				return
			}
			f.remember(chunk)
			if chunk.Usage != nil {
				u := *chunk.Usage
				usage = &u
			}
			if !f.trusted && c.Trusted != nil && c.Trusted(chunk) {
				f.trusted = true
				f.emit(f.cur[f.exposed:])
				f.cur, f.exposed, f.holding = "", 0, false
			}
			f.generated.WriteString(chunk.Text)
			if f.trusted {
				f.emit(chunk.Text)
			} else {
				f.push(chunk.Text)
			}
			if f.stopped {
				// The rest of the reply is not wanted: stop the model, and account for what it
				// generated so far, since its own count will not come.
				f.end()
				if usage == nil && c.EstimateUsage != nil {
					u := c.EstimateUsage(f.generated.String())
					usage = &u
				}
				yield(last(usage), nil)
				return
			}
			if out := f.take(); out != "" || chunk.Text != "" {
				if !yield(f.chunk(out), nil) {
					return
				}
			}
		}
		f.end()
		if out := last(usage); out.Text != "" || out.Usage != nil {
			yield(out, nil)
		}
	}
}

// filter is the state of one validated stream.
type filter struct {
	check   Check
	strict  bool
	trusted bool
	// cur is the current sentence; its first exposed bytes have been sent.
	cur     string
	exposed int
	holding bool
	// stopped: the reply ended early (a constraint, the length); cut: by a constraint.
	stopped, cut bool
	finished     bool
	sent         strings.Builder // everything sent
	pending      strings.Builder // sent but not yet yielded
	generated    strings.Builder // everything the model generated
	figures      []string
	meta         llm.Chunk
}

func (f *filter) remember(c llm.Chunk) {
	if c.Provider != "" {
		f.meta.Provider = c.Provider
	}
	if c.Model != "" {
		f.meta.Model = c.Model
	}
	f.meta.Cached = f.meta.Cached || c.Cached
}

func (f *filter) chunk(text string) llm.Chunk {
	return llm.Chunk{Text: text, Provider: f.meta.Provider, Model: f.meta.Model, Cached: f.meta.Cached}
}

func (f *filter) emit(s string) {
	f.sent.WriteString(s)
	f.pending.WriteString(s)
}

// emitJoined emits text of the validator's own, with a space before it when needed.
func (f *filter) emitJoined(s string) {
	if s == "" {
		return
	}
	sent := f.sent.String()
	if sent != "" && !strings.HasSuffix(sent, " ") && !strings.HasSuffix(sent, "\n") && !strings.HasPrefix(s, " ") {
		s = " " + s
	}
	f.emit(s)
}

func (f *filter) take() string {
	s := f.pending.String()
	f.pending.Reset()
	return s
}

func (f *filter) report(i Issue) {
	if f.check.Report != nil {
		f.check.Report(i)
	}
}

// push takes the next piece of generated text.
func (f *filter) push(text string) {
	if f.stopped {
		return
	}
	f.cur += text
	for !f.stopped {
		end := -1
		if loc := sentenceEnd.FindStringIndex(f.cur); loc != nil && loc[1] > 0 {
			end = loc[1]
		}
		upto := len(f.cur)
		if end >= 0 {
			upto = end
		}
		if !f.strict && !f.holding {
			seg := f.cur[:upto]
			if loc := riskMarker.FindStringIndex(seg); loc != nil {
				f.holding = true
				if loc[0] > f.exposed {
					f.release(seg[f.exposed:loc[0]])
					f.exposed = loc[0]
				}
			} else {
				f.release(seg[f.exposed:])
				f.exposed = upto
			}
			if f.stopped {
				return
			}
		}
		if end < 0 {
			if len(f.cur)-f.exposed > maxHeldSentence {
				cut := strings.LastIndexAny(f.cur[:f.exposed+maxHeldSentence], " \t")
				if cut <= f.exposed {
					cut = f.exposed + maxHeldSentence
				}
				f.complete(f.cur[:cut])
				f.cur, f.exposed, f.holding = f.cur[cut:], 0, false
				continue
			}
			return
		}
		f.complete(f.cur[:end])
		f.cur, f.exposed, f.holding = f.cur[end:], 0, false
	}
}

// release sends unheld text, cutting a runaway sentence far past the length limit.
func (f *filter) release(s string) {
	limit := f.check.Config.MaxChars + overrunSlack
	if f.sent.Len()+len(s) <= limit {
		f.emit(s)
		return
	}
	room := max(0, limit-f.sent.Len())
	cut := strings.LastIndexAny(s[:room], " \t\n")
	if cut < 0 {
		cut = room
	}
	f.emit(strings.TrimRight(s[:cut], " \t\n") + "…")
	f.report(Issue{Kind: "length", Text: s})
	f.stopped = true
}

// completePending checks and sends what is left of the current sentence.
func (f *filter) completePending() {
	if f.stopped || f.trusted || f.cur == "" {
		return
	}
	f.complete(f.cur)
	f.cur, f.exposed, f.holding = "", 0, false
}

// complete checks a whole sentence, the first f.exposed bytes of which were sent already.
func (f *filter) complete(sentence string) {
	rest := sentence[f.exposed:]
	if kind, bad := f.check.Constraints.CheckReply(sentence); bad {
		f.report(Issue{Kind: "constraint", Constraint: kind, Text: sentence})
		redirect := f.check.Constraints.Redirect(kind, f.check.Variant)
		switch {
		case strings.TrimSpace(rest) == "":
			// Sent whole before anything marked it (the markers should make this rare).
			redirect = "Sorry, I shouldn't have said that. " + redirect
		case f.exposed > 0 && strings.TrimSpace(sentence[:f.exposed]) != "":
			// The start of the sentence is out: correct it the way a person would aloud.
			redirect = "— actually, " + lowerFirst(redirect)
		}
		f.emitJoined(redirect)
		f.stopped, f.cut = true, true
		return
	}
	if f.check.Known != nil {
		if figs := f.check.Known.Unverified(sentence); len(figs) > 0 {
			f.report(Issue{Kind: "figures", Text: sentence, Figures: figs})
			switch f.check.Config.Numbers {
			case NumbersWithhold:
				if f.exposed > 0 && strings.TrimSpace(sentence[:f.exposed]) != "" {
					f.emitJoined("— I don't have a figure I can vouch for there. ")
				}
				return
			case NumbersCaveat:
				for _, fig := range figs {
					if !containsString(f.figures, fig) {
						f.figures = append(f.figures, fig)
					}
				}
			}
		}
	}
	f.emit(rest)
	if f.sent.Len() >= f.check.Config.MaxChars {
		f.report(Issue{Kind: "length", Text: sentence})
		f.stopped = true
	}
}

// end finishes the reply: the pending sentence, the figures caveat, and Finish's text.
func (f *filter) end() {
	if f.finished {
		return
	}
	f.finished = true
	if f.trusted {
		f.emit(f.cur[f.exposed:])
		f.cur = ""
	} else {
		f.completePending()
	}
	if f.cut {
		return
	}
	if len(f.figures) > 0 {
		f.emitJoined(caveat(f.figures))
	}
	if f.check.Finish != nil {
		f.emitJoined(f.check.Finish(f.sent.String()))
	}
}

// lowerFirst lowercases the first letter of a sentence that continues another, unless it is
// the pronoun I.
func lowerFirst(s string) string {
	if s == "" || s == "I" || strings.HasPrefix(s, "I ") || strings.HasPrefix(s, "I'") {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

func caveat(figs []string) string {
	if len(figs) > 3 {
		figs = figs[:3]
	}
	if len(figs) == 1 {
		return fmt.Sprintf("(Please double-check the figure %s: I couldn't verify it from our conversation.)", figs[0])
	}
	return fmt.Sprintf("(Please double-check the figures %s and %s: I couldn't verify them from our conversation.)", strings.Join(figs[:len(figs)-1], ", "), figs[len(figs)-1])
}
