package offline

import (
	"math"
	"strings"
	"testing"
)

func nested(depth int) string {
	return strings.Repeat("(", depth) + "1" + strings.Repeat(")", depth)
}

func TestEvaluate(t *testing.T) {
	tests := []struct {
		expr string
		want float64
	}{
		{"1+2*3", 7},
		{"(1+2)*3", 9},
		{"7-2-1", 4}, // left-associative
		{"8/2/2", 2}, // left-associative
		{"10/4", 2.5},
		{"3.5 * 2", 7},
		{" 1 + 1 ", 2},
		{"2^3^2", 512}, // right-associative: 2^(3^2)
		{"2^-1", 0.5},
		{"-3+5", 2},
		{"--2", 2},
		{"+4", 4},
		{"-(2+3)", -5},
		{"-2^2", -4}, // the power binds tighter than the sign
		{"(-2)^2", 4},
		{"2*-3", -6},
		{"50%", 0.5},
		{"15% * 200", 30},
		{"(20+30)%", 0.5},
		{"((((2))))", 2},
		{nested(64), 1},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := Evaluate(tt.expr)
			if err != nil {
				t.Fatalf("Evaluate(%q): %v", tt.expr, err)
			}
			if math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("Evaluate(%q) = %v, want %v", tt.expr, got, tt.want)
			}
		})
	}
}

func TestEvaluateErrors(t *testing.T) {
	tests := []struct {
		expr    string
		wantErr string // a fragment of the message; "" accepts any error
	}{
		{"1/0", "division by zero"},
		{"1/(2-2)", "division by zero"},
		{"0^-1", "not a finite number"},
		{"", ""},
		{"   ", ""},
		{"1+", "ends too early"},
		{"(1+2", "missing closing parenthesis"},
		{"1+2)", "unexpected"},
		{"2**3", "unexpected"},
		{"abc", "unexpected"},
		{"1..2", "bad number"},
		{".", "bad number"},
		{"50%%", "unexpected"},
		{"()", "unexpected"},
		{nested(65), "too many nested parentheses"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := Evaluate(tt.expr)
			if err == nil {
				t.Fatalf("Evaluate(%q) = %v, want an error", tt.expr, got)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Evaluate(%q) error %q, want it to mention %q", tt.expr, err, tt.wantErr)
			}
		})
	}
}

func TestExtractExpression(t *testing.T) {
	tests := []struct {
		text   string
		want   string
		wantOK bool
	}{
		{"what is 12 times (3 + 4)?", "12 * (3 + 4)", true},
		{"3x4", "3 * 4", true},
		{"3 x 4", "3 * 4", true},
		{"15% of 200", "15% * 200", true},
		{"what's 15 percent of 80?", "15% * 80", true},
		{"What is 7 divided by 2.", "7 / 2", true},
		{"2 to the power of 10", "2 ^ 10", true},
		{"calculate 6 × 7 please", "6 * 7", true},
		{"what is -5 + 3", "-5 + 3", true},
		{"there are no numbers here", "", false},
		{"what is 42?", "", false}, // a number alone is not arithmetic
		{"box 3", "", false},       // the x of "box" is not multiplication
		{"the box 3 and max 4", "", false},
		{"6 boxes", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, ok := extractExpression(tt.text)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("extractExpression(%q) = %q, %v; want %q, %v", tt.text, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestFormatNumber(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{84, "84"},
		{-5, "-5"},
		{2.5, "2.5"},
		{1.0 / 3, "0.333333"},
		{0.1 + 0.2, "0.3"},
	}
	for _, tt := range tests {
		if got := formatNumber(tt.v); got != tt.want {
			t.Errorf("formatNumber(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func FuzzEvaluate(f *testing.F) {
	for _, seed := range []string{"1+2*3", "(1+2)*3", "-2^2^-1", "15% * 200", "1/0", "((((1))))", "2^^3", "1..2", "-(-(-(3)))%", nested(70), "é+1"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		v, err := Evaluate(expr)
		if err != nil {
			return
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("Evaluate(%q) = %v without an error", expr, v)
		}
		_ = formatNumber(v)
	})
}
