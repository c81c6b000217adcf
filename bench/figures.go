package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// figure is one row of the table: a figure of issue 9, its target as written there, and the
// value of each run.
type figure struct {
	Key    string `json:"key"`
	Name   string `json:"name"`
	Unit   string `json:"unit"`
	Target string `json:"target"`
	// Median and P99 are the medians over the runs of each run's median and p99 (NaN, shown
	// as "—" and stored as null, where a figure has no such value).
	Median jsonFloat  `json:"median"`
	P99    jsonFloat  `json:"p99"`
	Result string     `json:"result"` // PASS, FAIL, "report" (no target) or ERROR
	Runs   []runValue `json:"runs"`
	Notes  []string   `json:"notes,omitempty"`

	// check says whether a median and p99 meet the target; nil for figures without one.
	check func(median, p99 float64) bool
}

// runValue is one run's value of a figure.
type runValue struct {
	Median jsonFloat `json:"median"`
	P99    jsonFloat `json:"p99"`
	Error  string    `json:"error,omitempty"`
}

// jsonFloat stores NaN as null.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, float64(f), 'g', 6, 64), nil
}

var nan = math.NaN()

func (f *figure) add(median, p99 float64) {
	f.Runs = append(f.Runs, runValue{Median: jsonFloat(median), P99: jsonFloat(p99)})
}

func (f *figure) fail(err error) {
	f.Runs = append(f.Runs, runValue{Median: jsonFloat(nan), P99: jsonFloat(nan), Error: err.Error()})
}

func (f *figure) note(format string, args ...any) {
	f.Notes = append(f.Notes, fmt.Sprintf(format, args...))
}

// settle computes the medians over the runs and the result.
func (f *figure) settle() {
	var medians, p99s []float64
	for _, r := range f.Runs {
		if r.Error == "" {
			medians = append(medians, float64(r.Median))
			p99s = append(p99s, float64(r.P99))
		}
	}
	f.Median, f.P99 = jsonFloat(median(medians)), jsonFloat(median(p99s))
	switch {
	case len(medians) == 0:
		f.Result = "ERROR"
	case f.check == nil:
		f.Result = "report"
	case f.check(float64(f.Median), float64(f.P99)):
		f.Result = "PASS"
	default:
		f.Result = "FAIL"
	}
}

// format shows a value in the figure's unit.
func (f *figure) format(v jsonFloat) string {
	x := float64(v)
	if math.IsNaN(x) {
		return "—"
	}
	switch f.Unit {
	case "ms":
		return strconv.FormatFloat(x, 'f', 3, 64) + " ms"
	case "tokens/s", "sessions":
		return thousands(int64(math.Round(x))) + " " + f.Unit
	case "KB":
		return strconv.FormatFloat(x, 'f', 1, 64) + " KB"
	case "%":
		return strconv.FormatFloat(x, 'f', 1, 64) + "%"
	case "USD":
		return "$" + strconv.FormatFloat(x, 'f', 4, 64)
	case "x":
		return strconv.FormatFloat(x, 'f', 0, 64) + "x"
	}
	return strconv.FormatFloat(x, 'g', 4, 64) + " " + f.Unit
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// printTable writes the one table: figure, median, p99, target, result; then the notes.
func printTable(w io.Writer, figs []*figure, markdown bool) {
	if markdown {
		fmt.Fprintln(w, "| figure | median | p99 | target | result |")
		fmt.Fprintln(w, "|---|---|---|---|---|")
		for _, f := range figs {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", f.Name, f.format(f.Median), f.format(f.P99), f.Target, f.Result)
		}
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "FIGURE\tMEDIAN\tP99\tTARGET\tRESULT")
		for _, f := range figs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Name, f.format(f.Median), f.format(f.P99), f.Target, f.Result)
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	for _, f := range figs {
		for _, n := range f.Notes {
			fmt.Fprintf(w, "- %s: %s\n", f.Name, n)
		}
		for i, r := range f.Runs {
			if r.Error != "" {
				fmt.Fprintf(w, "- %s: run %d failed: %s\n", f.Name, i+1, firstLine(r.Error))
			}
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
