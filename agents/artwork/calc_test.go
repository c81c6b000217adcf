package artwork

import (
	"math"
	"testing"
)

func TestDPIFormula(t *testing.T) {
	cases := []struct {
		name string
		px   int
		cm   float64
		want int
	}{
		{"3000 px over 30 cm", 3000, 30, 254},     // 3000 / 11.811 = 254.0
		{"3000 px over 25.4 cm", 3000, 25.4, 300}, // exactly 10 inches
		{"3000 px over 40 cm", 3000, 40, 191},     // 190.5 rounds up
		{"2000 px over 20 cm", 2000, 20, 254},
		{"4500 px over 38.1 cm", 4500, 38.1, 300},
		{"1 px over 5000 cm", 1, 5000, 0},
		{"zero length", 3000, 0, 0},
		{"negative length", 3000, -5, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := DPIAtCM(c.px, c.cm); got != c.want {
				t.Fatalf("DPIAtCM(%d, %v) = %d, want %d", c.px, c.cm, got, c.want)
			}
			if c.cm > 0 {
				if want := int(math.Round(float64(c.px) / (c.cm / 2.54))); DPIAtCM(c.px, c.cm) != want {
					t.Fatalf("DPIAtCM disagrees with round(px/(cm/2.54)) = %d", want)
				}
			}
		})
	}
	if got := DPIAt(3000, 10); got != 300 {
		t.Fatalf("DPIAt(3000, 10 in) = %d", got)
	}
}

func TestSizeAtFormula(t *testing.T) {
	cases := []struct {
		px          int
		dpi         float64
		wantCM      string
		wantInches  string
		exactInches float64
	}{
		{3000, 300, "25.4", "10.00", 10},
		{2000, 300, "16.9", "6.67", 2000.0 / 300},
		{3000, 250, "30.5", "12.00", 12},
		{2000, 150, "33.9", "13.33", 2000.0 / 150},
		{1234, 72, "43.5", "17.14", 1234.0 / 72},
	}
	for _, c := range cases {
		cm, in := SizeAt(c.px, c.dpi)
		if in != c.exactInches || cm != in*2.54 {
			t.Fatalf("SizeAt(%d, %v) = %v cm, %v in; want in = px/dpi and cm = in*2.54", c.px, c.dpi, cm, in)
		}
		if fmtCM(cm) != c.wantCM || fmtIn(in) != c.wantInches {
			t.Fatalf("SizeAt(%d, %v) formats as %s cm, %s in; want %s cm, %s in", c.px, c.dpi, fmtCM(cm), fmtIn(in), c.wantCM, c.wantInches)
		}
	}
	if cm, in := SizeAt(3000, 0); cm != 0 || in != 0 {
		t.Fatal("a zero DPI must give no size, not Inf")
	}
}

func TestQualityBands(t *testing.T) {
	cases := []struct {
		dpi  int
		want Band
	}{
		{1000, Optimal}, {300, Optimal}, {250, Optimal}, {249, Good}, {200, Good}, {199, Poor}, {72, Poor}, {0, Poor},
	}
	for _, c := range cases {
		if got := Quality(c.dpi); got != c.want {
			t.Errorf("Quality(%d) = %s, want %s", c.dpi, got, c.want)
		}
	}
}

func TestLengthsAndRounding(t *testing.T) {
	cases := []struct {
		l        Length
		cm, inch float64
	}{
		{Length{30, CM}, 30, 30 / 2.54},
		{Length{300, MM}, 30, 30 / 2.54},
		{Length{1.5, M}, 150, 150 / 2.54},
		{Length{10, Inch}, 25.4, 10},
		{Length{2, Foot}, 60.96, 24},
	}
	for _, c := range cases {
		if math.Abs(c.l.CM()-c.cm) > 1e-9 || math.Abs(c.l.Inches()-c.inch) > 1e-9 {
			t.Errorf("%s: %v cm, %v in; want %v cm, %v in", c.l, c.l.CM(), c.l.Inches(), c.cm, c.inch)
		}
	}
	// Half away from zero, as people round: 0.25 -> 0.3 (fmt alone would give 0.2).
	if fmtCM(0.25) != "0.3" || fmtIn(0.125) != "0.13" {
		t.Fatalf("rounding: %s, %s", fmtCM(0.25), fmtIn(0.125))
	}
	if fmtCM(16.93333) != "16.9" || fmtIn(6.666666) != "6.67" {
		t.Fatal("cm to one decimal, inches to two")
	}
}

func TestRatioAndPixelsFor(t *testing.T) {
	cases := []struct {
		p    Pixels
		want string
	}{
		{Pixels{3000, 2000}, "3:2"}, {Pixels{1920, 1080}, "16:9"}, {Pixels{1000, 1000}, "1:1"}, {Pixels{3001, 2000}, "1.50:1"},
	}
	for _, c := range cases {
		if got := c.p.Ratio(); got != c.want {
			t.Errorf("%v ratio %s, want %s", c.p, got, c.want)
		}
	}
	// 30 cm at 300 DPI is 3543.3 px: 3544 are needed to reach it.
	if got := PixelsFor(30/2.54, 300); got != 3544 {
		t.Fatalf("PixelsFor 30 cm at 300 = %d", got)
	}
	if got := PixelsFor(10, 300); got != 3000 {
		t.Fatalf("PixelsFor 10 in at 300 = %d, want exactly 3000", got)
	}
	if DPIAt(PixelsFor(30/2.54, 300), 30/2.54) < 300 {
		t.Fatal("the pixels needed must reach the target")
	}
}
