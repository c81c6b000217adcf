package offline

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

var errNoExpression = errors.New("no arithmetic expression")

var calcWords = strings.NewReplacer(
	"multiplied by", "*", "divided by", "/", "to the power of", "^", "times", "*", "plus", "+",
	"minus", "-", "×", "*", "÷", "/",
)

// timesX is a lone "x" between numbers ("3 x 4", "3x4"); inside words it must survive.
var timesX = regexp.MustCompile(`(\d)\s*x\s*(\d|\()`)

var digit = regexp.MustCompile(`\d`)

// percentOf is "15% of 200" or "15 percent of 200".
var percentOf = regexp.MustCompile(`(\d)\s*(%|percent)\s*of\s*`)

// exprPattern finds the longest run of arithmetic in a sentence.
var exprPattern = regexp.MustCompile(`[-+(]*\s*\d[\d\s.+\-*/^%()]*`)

// extractExpression turns "what is 12 times (3 + 4)?" into "12 * (3 + 4)".
func extractExpression(text string) (string, bool) {
	t := strings.ToLower(text)
	t = percentOf.ReplaceAllString(t, "$1% * ")
	t = calcWords.Replace(timesX.ReplaceAllString(t, "$1 * $2"))
	best := ""
	for _, m := range exprPattern.FindAllString(t, -1) {
		m = strings.TrimSpace(m)
		if len(m) > len(best) {
			best = m
		}
	}
	best = strings.TrimRight(best, " .")
	if !strings.ContainsAny(best, "+-*/^%") || !digit.MatchString(best) {
		return "", false
	}
	return best, true
}

// Evaluate computes an arithmetic expression: + - * / ^ % and parentheses, with the usual
// precedence; "%" after a number means percent.
func Evaluate(expr string) (float64, error) {
	p := &calcParser{src: strings.ReplaceAll(expr, " ", "")}
	if p.src == "" {
		return 0, errNoExpression
	}
	v, err := p.sum()
	if err != nil {
		return 0, err
	}
	if p.pos != len(p.src) {
		return 0, fmt.Errorf("unexpected %q", p.src[p.pos:])
	}
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, errors.New("the result is not a finite number (division by zero?)")
	}
	return v, nil
}

type calcParser struct {
	src   string
	pos   int
	depth int
}

func (p *calcParser) peek() byte {
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *calcParser) sum() (float64, error) {
	v, err := p.product()
	for err == nil && (p.peek() == '+' || p.peek() == '-') {
		op := p.src[p.pos]
		p.pos++
		var r float64
		if r, err = p.product(); err == nil {
			if op == '+' {
				v += r
			} else {
				v -= r
			}
		}
	}
	return v, err
}

func (p *calcParser) product() (float64, error) {
	v, err := p.unary()
	for err == nil && (p.peek() == '*' || p.peek() == '/') {
		op := p.src[p.pos]
		p.pos++
		var r float64
		if r, err = p.unary(); err == nil {
			if op == '*' {
				v *= r
			} else {
				if r == 0 {
					return 0, errors.New("division by zero")
				}
				v /= r
			}
		}
	}
	return v, err
}

// power binds tighter than a sign, so -2^2 is -(2^2); the exponent may carry its own sign.
func (p *calcParser) power() (float64, error) {
	base, err := p.primary()
	if err != nil || p.peek() != '^' {
		return base, err
	}
	p.pos++
	exp, err := p.unary() // right-associative: unary parses a power
	if err != nil {
		return 0, err
	}
	return math.Pow(base, exp), nil
}

func (p *calcParser) unary() (float64, error) {
	if p.peek() == '-' {
		p.pos++
		v, err := p.unary()
		return -v, err
	}
	if p.peek() == '+' {
		p.pos++
		return p.unary()
	}
	return p.power()
}

func (p *calcParser) primary() (float64, error) {
	if p.peek() == '(' {
		p.depth++
		if p.depth > 64 {
			return 0, errors.New("too many nested parentheses")
		}
		p.pos++
		v, err := p.sum()
		if err != nil {
			return 0, err
		}
		if p.peek() != ')' {
			return 0, errors.New("missing closing parenthesis")
		}
		p.pos++
		p.depth--
		return p.percent(v), nil
	}
	start := p.pos
	for p.pos < len(p.src) && (p.src[p.pos] >= '0' && p.src[p.pos] <= '9' || p.src[p.pos] == '.') {
		p.pos++
	}
	if start == p.pos {
		if p.pos >= len(p.src) {
			return 0, errors.New("the expression ends too early")
		}
		return 0, fmt.Errorf("unexpected %q", p.src[p.pos:p.pos+1])
	}
	v, err := strconv.ParseFloat(p.src[start:p.pos], 64)
	if err != nil {
		return 0, fmt.Errorf("bad number %q", p.src[start:p.pos])
	}
	return p.percent(v), nil
}

func (p *calcParser) percent(v float64) float64 {
	if p.peek() == '%' {
		p.pos++
		return v / 100
	}
	return v
}

// formatNumber prints up to 6 decimals without trailing zeros.
func formatNumber(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	s := strconv.FormatFloat(v, 'f', 6, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}
