package llm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
)

// maxSSELine bounds one line of a provider's event stream so a broken upstream cannot make us
// buffer without limit.
const maxSSELine = 1 << 20

// sseEvent is one server-sent event.
type sseEvent struct {
	Event string
	Data  []byte
}

// readSSE parses a text/event-stream body (the WHATWG framing: "event:" and "data:" fields,
// events ended by a blank line, comments starting with ":").
func readSSE(r io.Reader) iter.Seq2[sseEvent, error] {
	return func(yield func(sseEvent, error) bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64*1024), maxSSELine)
		var ev sseEvent
		var data [][]byte
		dispatch := func() bool {
			if len(data) == 0 && ev.Event == "" {
				return true
			}
			ev.Data = bytes.Join(data, []byte("\n"))
			ok := yield(ev, nil)
			ev, data = sseEvent{}, nil
			return ok
		}
		for sc.Scan() {
			line := sc.Bytes()
			if len(line) == 0 {
				if !dispatch() {
					return
				}
				continue
			}
			if line[0] == ':' {
				continue
			}
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "event":
				ev.Event = string(value)
			case "data":
				data = append(data, append([]byte(nil), value...))
			}
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				err = fmt.Errorf("event stream line over %d bytes", maxSSELine)
			}
			yield(sseEvent{}, err)
		}
		// An event not ended by a blank line is incomplete and, as the spec says, dropped.
	}
}
