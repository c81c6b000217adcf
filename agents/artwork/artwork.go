// Package artwork is the Artwork Analyzer: it answers how large an image can be printed and
// how sharp it will be, with exact numbers worked out by code (DPI at a print width, the
// largest print at a DPI, the height that keeps the aspect ratio, the quality band), in
// centimetres first and then inches. It advises on DTF and UV DTF artwork from a small
// built-in knowledge base, reads image headers for an upload endpoint (ReadImageInfo), and
// asks the language model only about what its rules do not cover.
//
// The artwork's pixel size comes from the message ("my image is 3000x2000 px"), else from the
// client's context (context.artwork = {"widthPx","heightPx","fileName"}, as an upload endpoint
// puts it), else from the conversation: the agent keeps no state, and every reply that
// computes something names the artwork ("your 3000 × 2000 px artwork"), so later turns read
// it back from the history.
package artwork

import (
	"context"
	_ "embed"
	"fmt"
	"iter"
	"math"
	"regexp"
	"strings"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/nlu"
	"github.com/dartmouth-gw/dartmouth/agents/offline"
)

// ID is the Artwork Analyzer's agent id.
const ID = "artwork"

// Models reported for replies the agent writes itself.
const (
	// RulesModel answers calculations and the conversation's small talk.
	RulesModel = "artwork-rules"
	// KnowledgeModel answers from the built-in knowledge base.
	KnowledgeModel = "artwork-knowledge"
)

//go:embed knowledge.md
var builtinKnowledge string

// Config configures the agent. Every zero value means the default.
type Config struct {
	// Knowledge is markdown with "# " headed sections about printing. Default: the built-in
	// guide to DTF, UV DTF, file formats and resolution (knowledge.md).
	Knowledge string
	// MinScore is the BM25 score a knowledge section needs to answer a question. Default 2.
	MinScore float64
	// Model overrides the provider's default model for open questions. Default: the
	// provider's.
	Model string
	// Temperature of language-model replies. Default 0.3.
	Temperature float64
	// MaxTokens bounds a language-model reply. Default 300.
	MaxTokens int
	// MaxPrintCM is the largest print side the agent works with. Default 5000 (50 m).
	MaxPrintCM float64
	// MinPrintCM is the smallest print side. Default 0.1 (1 mm).
	MinPrintCM float64
	// MaxPixels is the largest artwork side, in pixels. Default 1,000,000.
	MaxPixels int
	// MaxDPI is the highest resolution the agent works with. Default 10,000.
	MaxDPI float64
	// TableDPIs are the resolutions of the "how big can I print" table. Default 300, 250,
	// 200 and 150.
	TableDPIs []float64
	// MaxItems is how many sizes or resolutions one reply answers. Default 6.
	MaxItems int
}

// Agent is the Artwork Analyzer. It holds no per-conversation state.
type Agent struct {
	cfg   Config
	index *offline.Index
}

var _ agents.Agent = (*Agent)(nil)

// New builds the agent.
func New(cfg Config) *Agent {
	if cfg.Knowledge == "" {
		cfg.Knowledge = builtinKnowledge
	}
	if cfg.MinScore <= 0 {
		cfg.MinScore = 2
	}
	if cfg.Temperature == 0 {
		cfg.Temperature = 0.3
	}
	if cfg.MaxTokens <= 0 {
		cfg.MaxTokens = 300
	}
	if cfg.MaxPrintCM <= 0 {
		cfg.MaxPrintCM = 5000
	}
	if cfg.MinPrintCM <= 0 {
		cfg.MinPrintCM = 0.1
	}
	if cfg.MaxPixels <= 0 {
		cfg.MaxPixels = 1_000_000
	}
	if cfg.MaxDPI <= 0 {
		cfg.MaxDPI = 10_000
	}
	if len(cfg.TableDPIs) == 0 {
		cfg.TableDPIs = []float64{300, 250, 200, 150}
	}
	if cfg.MaxItems <= 0 {
		cfg.MaxItems = 6
	}
	return &Agent{cfg: cfg, index: offline.NewIndex(offline.ParseKnowledge(cfg.Knowledge))}
}

// Info implements agents.Agent.
func (a *Agent) Info() agents.Info {
	return agents.Info{ID: ID, Name: "Artwork Analyzer", Description: "Print sizes and resolution for your artwork: DPI at a print width, the largest print at a DPI, quality, and DTF / UV DTF advice. Sizes in cm, then inches."}
}

// SystemPrompt holds the rules the language model follows for open questions; the facts the
// agent knows about the conversation's artwork follow it.
const SystemPrompt = `You are the Artwork Analyzer, a print-preparation assistant for DTF and UV DTF printing, speaking through Dartmouth. Your replies may be read aloud, so write plain sentences without markdown, lists or emojis.

## Rules (CRITICAL)
- Keep replies to two or three sentences.
- Give every size in centimetres first, then inches in brackets: centimetres to one decimal, inches to two.
- Never invent or calculate numbers: use only the figures under "Facts". If a figure you need is not there, ask for the artwork's pixel size or the print size instead.
- Print quality: Optimal at 250 DPI or more, Good at 200 to 249 DPI, Poor under 200 DPI.
- DTF is for textiles; UV DTF is for hard substrates only, such as glass, metal, wood and plastic.
- DTF: text at least 8 pt (2.5 mm), lines at least 1 mm. UV DTF: text at least 2 mm, lines at least 0.5 to 1 mm.
- Never quote prices, discounts or refunds, and never promise delivery dates.
- If you do not know, say so plainly.`

// artworkSource is an artwork's pixel size and where it came from.
type artworkSource struct {
	px       Pixels
	fileName string
	fileDPI  float64
	// from is "message", "upload" (the client's context) or "conversation".
	from string
}

// turn is everything the agent knows for one reply.
type turn struct {
	message string // the user's message without markers
	req     request
	art     *artworkSource
	slider  *printSpec
	markers markers
}

// Respond implements agents.Agent.
func (a *Agent) Respond(ctx context.Context, in agents.Input) (agents.Reply, error) {
	t := a.read(in)
	sentiment := nlu.AnalyzeSentiment(t.message)
	calc := nlu.Intent{Name: nlu.IntentCalculation, Confidence: 1}
	if strings.TrimSpace(t.message) == "" {
		// A message of markers only: the client updated the artwork or the slider.
		return agents.Reply{Intent: calc, Sentiment: sentiment, Stream: stream(ctx, a.acknowledge(t), RulesModel)}, nil
	}
	if text, ok := a.calculate(t); ok {
		if t.req.topic && !in.CostSaving {
			if hit, ok := a.lookup(t.message); ok {
				text += " " + hit
			}
		}
		return agents.Reply{Intent: calc, Sentiment: sentiment, Stream: stream(ctx, text, RulesModel)}, nil
	}
	intent := nlu.DetectIntent(t.message)
	if text, ok := a.smallTalk(intent, t); ok {
		return agents.Reply{Intent: intent, Sentiment: sentiment, Stream: stream(ctx, text, RulesModel)}, nil
	}
	if moneyRe.MatchString(strings.ToLower(t.message)) {
		text := "I only help with artwork sizes and print preparation, so I can't answer questions about prices, payments, orders or delivery. Please contact the shop for those."
		return agents.Reply{Intent: intent, Sentiment: sentiment, Stream: stream(ctx, text, RulesModel)}, nil
	}
	if hit, ok := a.lookup(t.message); ok {
		if intent.Name == nlu.IntentUnknown || intent.Name == nlu.IntentCalculation {
			intent = nlu.Intent{Name: nlu.IntentInformation, Confidence: 0.75}
		}
		return agents.Reply{Intent: intent, Sentiment: sentiment, Stream: stream(ctx, hit, KnowledgeModel)}, nil
	}
	if t.req.sizing && !t.req.hasNumber {
		// "Can I print it big?": sizes in words, without a number to work with.
		return agents.Reply{Intent: calc, Sentiment: sentiment, Stream: stream(ctx, a.sizeGuidance(t), RulesModel)}, nil
	}
	if in.LLM == nil {
		text := "I can help with artwork sizes, DPI and print quality, and with DTF and UV DTF artwork. Tell me your image's pixel size or upload it to start."
		return agents.Reply{Intent: intent, Sentiment: sentiment, Stream: stream(ctx, text, RulesModel)}, nil
	}
	return agents.Reply{Intent: intent, Sentiment: sentiment, Stream: in.LLM.Stream(ctx, a.llmRequest(in, t))}, nil
}

// read gathers the turn's facts: the message, its markers, and the artwork and slider from
// the message, the client's context or the conversation, in that order.
func (a *Agent) read(in agents.Input) turn {
	msg, mk := extractMarkers(in.Message)
	t := turn{message: msg, req: parseRequest(msg), markers: mk}
	switch {
	case t.req.pixels != nil:
		t.art = &artworkSource{px: *t.req.pixels, from: "message"}
	default:
		if src, ok := artworkFromMap(mk.artwork); ok {
			src.from = "message"
			t.art = &src
		} else if m, ok := in.Context["artwork"].(map[string]any); ok {
			if src, ok := artworkFromMap(m); ok {
				src.from = "upload"
				t.art = &src
			}
		}
		if t.art == nil {
			if src, ok := a.artworkFromHistory(in.History, in.Summary); ok {
				t.art = &src
			}
		}
	}
	if s, ok := sliderFromMap(mk.slider); ok {
		t.slider = &s
	} else if m, ok := in.Context["slider"].(map[string]any); ok {
		if s, ok := sliderFromMap(m); ok {
			t.slider = &s
		}
	}
	if t.slider == nil {
		for i := len(in.History) - 1; i >= 0 && t.slider == nil; i-- {
			if in.History[i].Role == "user" {
				if _, hm := extractMarkers(in.History[i].Content); hm.slider != nil {
					if s, ok := sliderFromMap(hm.slider); ok {
						t.slider = &s
					}
				}
			}
		}
	}
	return t
}

// artworkFromHistory finds the artwork last named in the conversation: a size the user
// stated or uploaded, or the size the agent's own replies named.
func (a *Agent) artworkFromHistory(history []llm.Message, summary string) (artworkSource, bool) {
	for i := len(history) - 1; i >= 0; i-- {
		m := history[i]
		switch m.Role {
		case "user":
			text, mk := extractMarkers(m.Content)
			if r := parseRequest(text); r.pixels != nil && a.pixelsProblem(*r.pixels) == "" {
				return artworkSource{px: *r.pixels, from: "conversation"}, true
			}
			if src, ok := artworkFromMap(mk.artwork); ok && a.pixelsProblem(src.px) == "" {
				src.from = "conversation"
				return src, true
			}
		case "assistant":
			if p, ok := pixelsInReply(m.Content); ok && a.pixelsProblem(p) == "" {
				return artworkSource{px: p, from: "conversation"}, true
			}
		}
	}
	if p, ok := pixelsInReply(summary); ok && a.pixelsProblem(p) == "" {
		return artworkSource{px: p, from: "conversation"}, true
	}
	if r := parseRequest(summary); r.pixels != nil && a.pixelsProblem(*r.pixels) == "" {
		return artworkSource{px: *r.pixels, from: "conversation"}, true
	}
	return artworkSource{}, false
}

// Problems with numbers, each a whole sentence the user can act on; "" when the value is fine.

func (a *Agent) pixelsProblem(p Pixels) string {
	switch {
	case p.W < 1 || p.H < 1:
		return fmt.Sprintf("An image can't be %d × %d pixels: both sides need at least 1 pixel. Tell me its real size, for example 3000 × 2000 px.", p.W, p.H)
	case p.W > a.cfg.MaxPixels || p.H > a.cfg.MaxPixels:
		return fmt.Sprintf("%d × %d pixels is more than any image I can work with (at most %d pixels a side). Please check the size; a typical print file is around 3000 × 2000 px.", p.W, p.H, a.cfg.MaxPixels)
	}
	return ""
}

func (a *Agent) lengthProblem(l Length) string {
	cm := l.CM()
	switch {
	case cm <= 0:
		return fmt.Sprintf("A print can't be %s: give a size above zero, for example 30 cm wide.", l)
	case cm < a.cfg.MinPrintCM:
		return fmt.Sprintf("%s is too small to print; the smallest size I work with is %s cm (1 mm).", l, fmtNum(a.cfg.MinPrintCM))
	case cm > a.cfg.MaxPrintCM:
		return fmt.Sprintf("%s is %s metres, far larger than anything printed in one piece; I work with sizes up to %s cm (%s m). Did you mean a smaller size, such as 30 cm?",
			l, fmtNum(math.Round(cm)/100), fmtNum(a.cfg.MaxPrintCM), fmtNum(a.cfg.MaxPrintCM/100))
	}
	return ""
}

func (a *Agent) dpiProblem(dpi float64) string {
	switch {
	case dpi < 1:
		return fmt.Sprintf("%s DPI doesn't work: a resolution needs at least 1 dot per inch. Print files usually aim for 300 DPI, and 200 DPI is the least for Good quality.", fmtNum(dpi))
	case dpi > a.cfg.MaxDPI:
		return fmt.Sprintf("%s DPI is far beyond what any printer resolves (I work with up to %s DPI). For print, 300 DPI is the usual target.", fmtNum(dpi), fmtNum(a.cfg.MaxDPI))
	}
	return ""
}

// calculate answers the sizes and resolutions a message asks about; ok is false when it
// asks about none.
func (a *Agent) calculate(t turn) (string, bool) {
	r := t.req
	if r.negative && (r.sizing || !r.empty()) {
		return "Sizes and resolutions can't be negative. Tell me a positive size, for example 30 cm wide, or a resolution such as 300 DPI." + a.reference(t), true
	}
	if r.empty() {
		return "", false
	}
	prints := r.prints
	if r.wantsCurrent && len(prints) == 0 && len(r.dpis) == 0 {
		if t.slider == nil {
			return "I don't see a selected print size yet. Tell me the width you want, for example 30 cm wide, and I'll work out the DPI." + a.reference(t), true
		}
		prints = []printSpec{*t.slider}
	}
	var problems []string
	if r.pixels != nil {
		if p := a.pixelsProblem(*r.pixels); p != "" {
			return p, true
		}
	}
	for _, p := range prints {
		if p.hasW {
			if s := a.lengthProblem(p.width); s != "" {
				problems = append(problems, s)
			}
		}
		if p.hasH {
			if s := a.lengthProblem(p.height); s != "" {
				problems = append(problems, s)
			}
		}
	}
	for _, d := range r.dpis {
		if s := a.dpiProblem(d); s != "" {
			problems = append(problems, s)
		}
	}
	if len(problems) > 0 {
		return strings.Join(problems, " ") + a.reference(t), true
	}
	note := ""
	if len(prints) > a.cfg.MaxItems || len(r.dpis) > a.cfg.MaxItems {
		note = fmt.Sprintf(" I've answered the first %d; ask again for the rest.", a.cfg.MaxItems)
		prints = prints[:min(len(prints), a.cfg.MaxItems)]
	}
	dpis := r.dpis[:min(len(r.dpis), a.cfg.MaxItems)]

	if t.art == nil {
		return a.withoutArtwork(prints, dpis) + note, true
	}
	art := t.art.px
	if p := a.pixelsProblem(art); p != "" {
		return p, true
	}
	var b strings.Builder
	switch {
	case len(prints) > 0:
		for i, p := range prints {
			if i > 0 {
				b.WriteString(" ")
			}
			b.WriteString(printAnswer(art, p, dpis, i == 0))
		}
	case len(dpis) > 0:
		b.WriteString(maxAnswer(art, dpis))
	case r.wantsMax:
		b.WriteString(maxAnswer(art, a.cfg.TableDPIs))
	default:
		b.WriteString(a.summary(*t.art))
	}
	b.WriteString(note)
	return b.String(), true
}

// printAnswer is the DPI and quality of art printed at p, checked against target DPIs.
func printAnswer(art Pixels, p printSpec, targets []float64, first bool) string {
	subject := "it"
	if first {
		subject = "your " + art.String() + " artwork"
	}
	var b strings.Builder
	var dpi int
	switch {
	case p.hasW && p.hasH:
		dw, dh := float64(art.W)/p.width.Inches(), float64(art.H)/p.height.Inches()
		dpi = int(math.Round((dw + dh) / 2))
		fmt.Fprintf(&b, "At %s, %s prints at %d DPI on average (%d across, %d down): %s.",
			fmtSize(p.width.CM(), p.height.CM(), p.width.Inches(), p.height.Inches()), subject, dpi,
			DPIAt(art.W, p.width.Inches()), DPIAt(art.H, p.height.Inches()), Quality(dpi).describe())
		want := float64(art.W) / float64(art.H)
		got := p.width.CM() / p.height.CM()
		if math.Abs(got-want)/want > 0.02 {
			hcm := p.width.CM() * float64(art.H) / float64(art.W)
			fmt.Fprintf(&b, " That is not the artwork's %s shape, so it would be stretched or cropped; at %s wide it is %s tall.",
				art.Ratio(), fmtCM(p.width.CM())+" cm", fmtSide(hcm, hcm/cmPerInch))
		}
	case p.hasW:
		dpi = DPIAt(art.W, p.width.Inches())
		hcm := p.width.CM() * float64(art.H) / float64(art.W)
		fmt.Fprintf(&b, "At %s wide, %s prints %s tall at %d DPI: %s.",
			fmtSide(p.width.CM(), p.width.Inches()), subject, fmtSide(hcm, hcm/cmPerInch), dpi, Quality(dpi).describe())
	default:
		dpi = DPIAt(art.H, p.height.Inches())
		wcm := p.height.CM() * float64(art.W) / float64(art.H)
		fmt.Fprintf(&b, "At %s tall, %s prints %s wide at %d DPI: %s.",
			fmtSide(p.height.CM(), p.height.Inches()), subject, fmtSide(wcm, wcm/cmPerInch), dpi, Quality(dpi).describe())
	}
	checkTargets(&b, art, p, dpi, targets)
	switch p.assumed {
	case "width":
		return fmt.Sprintf("Taking %s as the width: a", p.width) + b.String()[1:]
	case "cm":
		return fmt.Sprintf("Reading %s × %s as centimetres: a", fmtNum(p.width.Value), fmtNum(p.height.Value)) + b.String()[1:]
	}
	return b.String()
}

// checkTargets compares the DPI a print size reaches with the DPIs the user asked for.
func checkTargets(b *strings.Builder, art Pixels, p printSpec, dpi int, targets []float64) {
	for _, target := range targets {
		if float64(dpi) >= target {
			fmt.Fprintf(b, " That meets your %s DPI target.", fmtNum(target))
			continue
		}
		m := MaxPrintAt(art, target)
		fmt.Fprintf(b, " That is below %s DPI: at %s DPI it prints at most %s, and this size would need %s.",
			fmtNum(target), fmtNum(target), fmtSize(m.WidthCM, m.HeightCM, m.WidthIn, m.HeightIn), neededPixels(p, target))
	}
}

// neededPixels is the pixel count a print size needs at dpi, for the sides given.
func neededPixels(p printSpec, dpi float64) string {
	switch {
	case p.hasW && p.hasH:
		return fmt.Sprintf("%d × %d pixels", PixelsFor(p.width.Inches(), dpi), PixelsFor(p.height.Inches(), dpi))
	case p.hasW:
		return fmt.Sprintf("%d pixels across", PixelsFor(p.width.Inches(), dpi))
	}
	return fmt.Sprintf("%d pixels down", PixelsFor(p.height.Inches(), dpi))
}

// maxAnswer is the largest print of art at each resolution.
func maxAnswer(art Pixels, dpis []float64) string {
	items := make([]string, len(dpis))
	for i, d := range dpis {
		items[i] = MaxPrintAt(art, d).String()
	}
	if len(items) == 1 {
		return "Your " + art.String() + " artwork prints at most " + items[0] + "."
	}
	return "Your " + art.String() + " artwork prints at most: " + strings.Join(items, "; ") + "."
}

// summary describes an artwork whose size was just given, without a question about it.
func (a *Agent) summary(src artworkSource) string {
	art := src.px
	opt, good := MaxPrintAt(art, 300), MaxPrintAt(art, 200)
	var b strings.Builder
	name := ""
	if src.fileName != "" {
		name = " (" + src.fileName + ")"
	}
	fmt.Fprintf(&b, "Your %s artwork%s has a %s aspect ratio. It prints up to %s at 300 DPI, which is Optimal, and up to %s at 200 DPI, which is still Good.",
		art, name, art.Ratio(), fmtSize(opt.WidthCM, opt.HeightCM, opt.WidthIn, opt.HeightIn), fmtSize(good.WidthCM, good.HeightCM, good.WidthIn, good.HeightIn))
	if src.fileDPI > 0 {
		fmt.Fprintf(&b, " Its file says %s DPI, but only the pixel size and the print size decide the quality.", fmtNum(src.fileDPI))
	}
	b.WriteString(" Tell me the width you want, for example 30 cm wide, and I'll give you the DPI and height.")
	return b.String()
}

// withoutArtwork answers what can be answered without the artwork's size, and asks for it.
func (a *Agent) withoutArtwork(prints []printSpec, dpis []float64) string {
	ask := "Tell me your artwork's pixel size, for example 3000 × 2000 px, or upload the image"
	if len(prints) == 0 {
		return "To work out print sizes I need your artwork's pixel size: upload the image, or tell me its size, for example 3000 × 2000 px. Then ask for a width such as 30 cm wide, or a resolution such as 300 DPI."
	}
	if len(dpis) == 0 {
		dpis = []float64{300}
	}
	var parts []string
	for _, p := range prints {
		for _, d := range dpis {
			parts = append(parts, fmt.Sprintf("%s at %s DPI needs %s", describePrint(p), fmtNum(d), neededPixels(p, d)))
		}
	}
	return "For reference, " + joinList(parts) + ". " + ask + " and I'll work out its DPI and quality at that size."
}

// describePrint writes a print size in cm, then inches.
func describePrint(p printSpec) string {
	switch {
	case p.hasW && p.hasH:
		return fmtSize(p.width.CM(), p.height.CM(), p.width.Inches(), p.height.Inches())
	case p.hasW:
		return fmtSide(p.width.CM(), p.width.Inches()) + " wide"
	}
	return fmtSide(p.height.CM(), p.height.Inches()) + " tall"
}

// reference reminds the user what the known artwork can do, after a correction.
func (a *Agent) reference(t turn) string {
	if t.art == nil || a.pixelsProblem(t.art.px) != "" {
		return ""
	}
	m := MaxPrintAt(t.art.px, 300)
	return fmt.Sprintf(" For reference, your %s artwork prints up to %s at 300 DPI.", t.art.px, fmtSize(m.WidthCM, m.HeightCM, m.WidthIn, m.HeightIn))
}

// sizeGuidance answers size questions asked in words only.
func (a *Agent) sizeGuidance(t turn) string {
	if t.art == nil || a.pixelsProblem(t.art.px) != "" {
		return a.withoutArtwork(nil, nil)
	}
	return maxAnswer(t.art.px, a.cfg.TableDPIs) + " Tell me a size in numbers, for example 30 cm wide, and I'll work out the DPI."
}

// acknowledge answers a message of markers only.
func (a *Agent) acknowledge(t turn) string {
	if t.slider != nil && t.markers.slider != nil {
		if t.art == nil {
			return fmt.Sprintf("Noted: %s. Tell me your artwork's pixel size or upload it, and I'll check the DPI.", describePrint(*t.slider))
		}
		return printAnswer(t.art.px, *t.slider, nil, true)
	}
	if t.art != nil {
		return a.summary(*t.art)
	}
	return "I couldn't read that artwork or size. Upload the image, or tell me its pixel size, for example 3000 × 2000 px."
}

var moneyRe = regexp.MustCompile(`\b(price|prices|pricing|cost|costs|how much|refund|refunds|discount|discounts|coupon|payment|pay|invoice|tracking|delivery|deliver|shipping|ship|my order|order status)\b`)

// smallTalk answers greetings, thanks, farewells and "what can you do" itself.
func (a *Agent) smallTalk(intent nlu.Intent, t turn) (string, bool) {
	switch intent.Name {
	case nlu.IntentGreeting:
		if t.art != nil && a.pixelsProblem(t.art.px) == "" {
			return fmt.Sprintf("Hi! I have your %s artwork. Tell me the print width you want, for example 30 cm wide, or a resolution such as 300 DPI, and I'll work out the size and quality.", t.art.px), true
		}
		return "Hi! I'm the Artwork Analyzer. Upload your image or tell me its pixel size, for example 3000 × 2000 px, and I'll work out the DPI at any print size, the largest print at a given DPI, and whether it suits DTF or UV DTF.", true
	case nlu.IntentGratitude:
		return "You're welcome! Send me another size whenever you like.", true
	case nlu.IntentFarewell:
		return "Goodbye, and good luck with your print!", true
	case nlu.IntentSmallTalk:
		return "I'm the Artwork Analyzer. Give me your image's pixel size or upload it, and I'll work out the DPI at any print width, the largest print at a given DPI and the height that keeps its shape, in centimetres and inches. I can also advise on artwork for DTF and UV DTF.", true
	}
	return "", false
}

// lookup answers from the knowledge base.
func (a *Agent) lookup(question string) (string, bool) {
	hits := a.index.Search(question, 1)
	if len(hits) == 0 || hits[0].Score < a.cfg.MinScore {
		return "", false
	}
	return hits[0].Section.Body, true
}

// llmRequest asks the language model an open question, with the rules and the known facts.
func (a *Agent) llmRequest(in agents.Input, t turn) llm.Request {
	var b strings.Builder
	b.WriteString(SystemPrompt)
	if in.Options.System != "" {
		b.WriteString("\n\n## Instructions from the app\n")
		b.WriteString(in.Options.System)
	}
	b.WriteString("\n\n## Facts\n")
	if t.art != nil && a.pixelsProblem(t.art.px) == "" {
		art := t.art.px
		fmt.Fprintf(&b, "- The user's artwork is %s (aspect ratio %s)", art, art.Ratio())
		if t.art.fileName != "" {
			fmt.Fprintf(&b, ", file %q", t.art.fileName)
		}
		fmt.Fprintf(&b, ", as given in the %s.\n", t.art.from)
		for _, d := range a.cfg.TableDPIs {
			fmt.Fprintf(&b, "- Largest print at %s DPI: %s.\n", fmtNum(d), MaxPrintAt(art, d))
		}
		if t.slider != nil {
			fmt.Fprintf(&b, "- The selected print size: %s\n", printAnswer(art, *t.slider, nil, false))
		}
	} else {
		b.WriteString("- The artwork's pixel size is not known yet.\n")
	}
	if in.Summary != "" {
		b.WriteString("- Earlier in this conversation:\n")
		b.WriteString(in.Summary)
		b.WriteString("\n")
	}
	if !in.CostSaving {
		if hits := a.index.Search(t.message, 1); len(hits) > 0 && hits[0].Score > 0 {
			fmt.Fprintf(&b, "- From the knowledge base (%s): %s\n", hits[0].Section.Title, hits[0].Section.Body)
		}
	}
	temp := a.cfg.Temperature
	if in.Options.Temperature != nil {
		temp = *in.Options.Temperature
	}
	req := llm.Request{
		Model:       a.cfg.Model,
		System:      b.String(),
		CachePrefix: len(SystemPrompt),
		Messages:    append(append([]llm.Message(nil), in.History...), llm.Message{Role: "user", Content: t.message}),
		Temperature: &temp,
		MaxTokens:   a.cfg.MaxTokens,
	}
	if in.Options.Model != "" {
		req.Model = in.Options.Model
	}
	if in.Options.MaxTokens > 0 && in.Options.MaxTokens < req.MaxTokens {
		req.MaxTokens = in.Options.MaxTokens
	}
	return req
}

// stream sends a reply the agent wrote itself a few words at a time, then a usage chunk so
// the engine sees a complete reply; it costs nothing.
func stream(ctx context.Context, text, model string) iter.Seq2[llm.Chunk, error] {
	return func(yield func(llm.Chunk, error) bool) {
		words := strings.SplitAfter(text, " ")
		for i := 0; i < len(words); i += 6 {
			if err := ctx.Err(); err != nil {
				yield(llm.Chunk{}, err)
				return
			}
			piece := strings.Join(words[i:min(i+6, len(words))], "")
			if !yield(llm.Chunk{Text: piece, Provider: ID, Model: model}, nil) {
				return
			}
		}
		yield(llm.Chunk{Provider: ID, Model: model, Usage: &llm.Usage{}}, nil)
	}
}
