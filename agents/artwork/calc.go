package artwork

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The print formulas. They are exact and answered by code, never by a language model:
//
//	DPI     = round(px_w / (width_cm / 2.54))   (the pixels along a side over its length in inches)
//	size_in = px / dpi
//	size_cm = size_in * 2.54
//	height  = width * px_h / px_w               (the artwork's aspect ratio is kept)

// cmPerInch is the definition of the inch.
const cmPerInch = 2.54

// Pixels is an artwork's size in pixels.
type Pixels struct {
	W, H int
}

// String is the canonical form the agent writes in its replies, which it also reads back
// from the conversation history on later turns: "3000 × 2000 px".
func (p Pixels) String() string { return fmt.Sprintf("%d × %d px", p.W, p.H) }

// Ratio is the aspect ratio in its simplest form ("3:2"), or as a decimal ("1.78:1") when
// the simplest form has large terms.
func (p Pixels) Ratio() string {
	g := gcd(p.W, p.H)
	if g > 0 && p.W/g <= 32 && p.H/g <= 32 {
		return fmt.Sprintf("%d:%d", p.W/g, p.H/g)
	}
	return strconv.FormatFloat(float64(p.W)/float64(p.H), 'f', 2, 64) + ":1"
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// DPIAt is the resolution of px pixels printed over inches: round(px / inches).
func DPIAt(px int, inches float64) int {
	if inches <= 0 {
		return 0
	}
	return int(math.Round(float64(px) / inches))
}

// DPIAtCM is DPIAt for a length in centimetres: round(px / (cm / 2.54)).
func DPIAtCM(px int, cm float64) int { return DPIAt(px, cm/cmPerInch) }

// SizeAt is how long px pixels print at dpi: inches = px / dpi, cm = inches * 2.54.
func SizeAt(px int, dpi float64) (cm, inches float64) {
	if dpi <= 0 {
		return 0, 0
	}
	inches = float64(px) / dpi
	return inches * cmPerInch, inches
}

// PixelsFor is how many pixels a side of inches needs to reach dpi, rounded up so the
// target is met.
func PixelsFor(inches, dpi float64) int {
	return int(math.Ceil(inches*dpi - 1e-9))
}

// Band is a print-quality band.
type Band string

// The quality bands.
const (
	Optimal Band = "Optimal" // 250 DPI or more
	Good    Band = "Good"    // 200 to 249 DPI
	Poor    Band = "Poor"    // under 200 DPI
)

// Quality is the band of a resolution: Optimal at 250 DPI or more, Good at 200-249, Poor
// below 200.
func Quality(dpi int) Band {
	switch {
	case dpi >= 250:
		return Optimal
	case dpi >= 200:
		return Good
	}
	return Poor
}

// describe says what a band means in a few words.
func (b Band) describe() string {
	switch b {
	case Optimal:
		return "Optimal (250 DPI or more)"
	case Good:
		return "Good (200 to 249 DPI)"
	}
	return "Poor (under 200 DPI; expect visible pixels)"
}

// Unit is a length unit.
type Unit string

// Length units.
const (
	MM   Unit = "mm"
	CM   Unit = "cm"
	M    Unit = "m"
	Inch Unit = "in"
	Foot Unit = "ft"
)

// Length is a distance in the unit the user gave it.
type Length struct {
	Value float64
	Unit  Unit
}

// CM is the length in centimetres.
func (l Length) CM() float64 {
	switch l.Unit {
	case MM:
		return l.Value / 10
	case M:
		return l.Value * 100
	case Inch:
		return l.Value * cmPerInch
	case Foot:
		return l.Value * 12 * cmPerInch
	}
	return l.Value
}

// Inches is the length in inches; lengths given in inches are used as they are, so the
// formulas see exactly what the user said.
func (l Length) Inches() float64 {
	switch l.Unit {
	case Inch:
		return l.Value
	case Foot:
		return l.Value * 12
	}
	return l.CM() / cmPerInch
}

// String writes the length as the user gave it ("30 cm", "12.5 in").
func (l Length) String() string {
	return strconv.FormatFloat(l.Value, 'f', -1, 64) + " " + string(l.Unit)
}

// round1 and round2 round half away from zero, as a person would.
func round1(v float64) float64 { return math.Round(v*10) / 10 }
func round2(v float64) float64 { return math.Round(v*100) / 100 }

// fmtCM writes centimetres to one decimal; fmtIn writes inches to two; fmtNum writes a
// number as given ("300", "25.5"); fmtSide writes one length, cm first: "30.0 cm (11.81 in)".
func fmtCM(cm float64) string       { return strconv.FormatFloat(round1(cm), 'f', 1, 64) }
func fmtIn(in float64) string       { return strconv.FormatFloat(round2(in), 'f', 2, 64) }
func fmtNum(v float64) string       { return strconv.FormatFloat(v, 'f', -1, 64) }
func fmtSide(cm, in float64) string { return fmtCM(cm) + " cm (" + fmtIn(in) + " in)" }

// fmtSize writes a print size in cm first, then inches: "25.4 × 16.9 cm (10.00 × 6.67 in)".
func fmtSize(wcm, hcm, win, hin float64) string {
	return fmtCM(wcm) + " × " + fmtCM(hcm) + " cm (" + fmtIn(win) + " × " + fmtIn(hin) + " in)"
}

// MaxPrint is the largest print of an artwork at a resolution.
type MaxPrint struct {
	DPI               float64
	WidthCM, HeightCM float64
	WidthIn, HeightIn float64
	Band              Band
}

// MaxPrintAt is the largest print of p at dpi.
func MaxPrintAt(p Pixels, dpi float64) MaxPrint {
	wcm, win := SizeAt(p.W, dpi)
	hcm, hin := SizeAt(p.H, dpi)
	return MaxPrint{DPI: dpi, WidthCM: wcm, HeightCM: hcm, WidthIn: win, HeightIn: hin, Band: Quality(int(math.Round(dpi)))}
}

func (m MaxPrint) String() string {
	return fmtSize(m.WidthCM, m.HeightCM, m.WidthIn, m.HeightIn) + " at " + fmtNum(m.DPI) + " DPI (" + string(m.Band) + ")"
}

// joinList joins items as "a, b and c".
func joinList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}
