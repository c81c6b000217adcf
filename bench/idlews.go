package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Idle WebSocket sessions: many clients each open /api/v2/ws, start a text session and then
// say nothing; the figure is how much resident memory each adds to the gateway process.
//
// The client is a few lines of raw RFC 6455 (handshake, one masked text frame, reading
// frames) rather than a WebSocket library, so the bench itself stays small at 50,000
// connections, and each socket is bound to a chosen 127.0.0.x source address: one source
// address has only ~28,000 ephemeral ports towards the gateway's one port.

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT (linux/in.h): binding the source address
// leaves the port to connect, which then picks it per destination instead of reserving one
// across all of them.
const ipBindAddressNoPort = 24

// sessionsPerSourceAddr keeps each 127.0.0.x well inside the ephemeral port range.
const sessionsPerSourceAddr = 20000

// idleConn is one open idle session.
type idleConn struct {
	net.Conn
}

// dialIdleSession opens one WebSocket from src to the gateway's /api/v2/ws, starts a text
// session for user and waits for session.started.
func dialIdleSession(ctx context.Context, gatewayAddr string, src net.IP, user string) (*idleConn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 30 * time.Second,
		Control: func(_, _ string, c syscall.RawConn) error {
			var sockErr error
			if err := c.Control(func(fd uintptr) {
				sockErr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
			}); err != nil {
				return err
			}
			return sockErr
		}}
	conn, err := d.DialContext(ctx, "tcp", gatewayAddr)
	if err != nil {
		return nil, err
	}
	// Bound the handshake; the connection is idle (no deadline) once the session is started.
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	} else {
		conn.SetDeadline(time.Now().Add(30 * time.Second))
	}
	br := bufio.NewReaderSize(conn, 512)
	if err := wsHandshake(conn, br, gatewayAddr); err != nil {
		conn.Close()
		return nil, err
	}
	start := fmt.Appendf(nil, `{"type":"session.start","id":"s","agentId":"fam","userId":%q}`, user)
	if _, err := conn.Write(maskedTextFrame(start)); err != nil {
		conn.Close()
		return nil, err
	}
	payload, err := readServerFrame(br)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("waiting for session.started: %w", err)
	}
	if !bytes.Contains(payload, []byte(`"session.started"`)) {
		conn.Close()
		return nil, fmt.Errorf("session.start answered %.200s", payload)
	}
	conn.SetDeadline(time.Time{})
	return &idleConn{Conn: conn}, nil
}

// wsHandshake upgrades an HTTP/1.1 connection to a WebSocket on /api/v2/ws.
func wsHandshake(conn net.Conn, br *bufio.Reader, host string) error {
	var key [16]byte
	rand.Read(key[:])
	req := "GET /api/v2/ws HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key[:]) + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("handshake: status %d: %s", resp.StatusCode, body)
	}
	return nil
}

// maskedTextFrame is one final text frame as a client must send it (masked, RFC 6455 5.3).
func maskedTextFrame(payload []byte) []byte {
	frame := []byte{0x81}
	switch n := len(payload); {
	case n < 126:
		frame = append(frame, 0x80|byte(n))
	case n <= 0xffff:
		frame = append(frame, 0x80|126)
		frame = binary.BigEndian.AppendUint16(frame, uint16(n))
	default:
		frame = append(frame, 0x80|127)
		frame = binary.BigEndian.AppendUint64(frame, uint64(n))
	}
	var mask [4]byte
	rand.Read(mask[:])
	frame = append(frame, mask[:]...)
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	return frame
}

// readServerFrame reads one unfragmented, unmasked frame (what the gateway sends) and returns
// its payload.
func readServerFrame(br *bufio.Reader) ([]byte, error) {
	var head [2]byte
	if _, err := io.ReadFull(br, head[:]); err != nil {
		return nil, err
	}
	if head[0]&0x80 == 0 {
		return nil, errors.New("fragmented frame: not expected from a short control reply")
	}
	if head[1]&0x80 != 0 {
		return nil, errors.New("masked frame from the server")
	}
	n := uint64(head[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return nil, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return nil, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if n > 1<<20 {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	payload := make([]byte, n)
	_, err := io.ReadFull(br, payload)
	return payload, err
}

// idleResult is one run of the idle-session measurement.
type idleResult struct {
	Sessions        int     // held open at once
	BaselineRSS     int64   // bytes, after the warm-up sessions were open
	LoadedRSS       int64   // bytes, with every session open
	BytesPerSession float64 // (LoadedRSS - BaselineRSS) / the sessions opened after the baseline
	// Where the memory went, per added session, from the gateway's /metrics (Go runtime
	// gauges): goroutines, heap in use and goroutine stacks in use.
	GoroutinesPerSession, HeapPerSession, StackPerSession float64
}

// sourceAddr spreads session i over 127.0.0.2, 127.0.0.3 ...
func sourceAddr(i int) net.IP {
	n := i / sessionsPerSourceAddr
	return net.IPv4(127, 0, byte(n>>8), byte(2+n%250))
}

// measureIdleSessions opens warmUp sessions, reads the gateway's RSS, opens the rest up to
// total, reads it again once it has settled, and closes them all.
func measureIdleSessions(ctx context.Context, g *gatewayProc, total, warmUp int, progress func(string)) (idleResult, error) {
	res := idleResult{Sessions: total}
	conns := make([]*idleConn, total)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	open := func(from, to int) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var next atomic.Int64
		next.Store(int64(from))
		var firstErr error
		var once sync.Once
		var wg sync.WaitGroup
		for range 32 { // dials in flight: enough to keep two cores busy, under the listen backlog
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= to || ctx.Err() != nil {
						return
					}
					c, err := dialIdleSession(ctx, g.Addr, sourceAddr(i), fmt.Sprintf("idle-%d", i))
					if err != nil {
						once.Do(func() { firstErr = fmt.Errorf("session %d: %w", i, err); cancel() })
						return
					}
					conns[i] = c
					if (i+1)%5000 == 0 {
						progress(fmt.Sprintf("%d idle sessions open", i+1))
					}
				}
			})
		}
		wg.Wait()
		return firstErr
	}
	if err := open(0, warmUp); err != nil {
		return res, err
	}
	var err error
	if res.BaselineRSS, err = settledRSS(ctx, g.PID()); err != nil {
		return res, err
	}
	before, err := runtimeGauges(ctx, g.URL)
	if err != nil {
		return res, err
	}
	if err := open(warmUp, total); err != nil {
		return res, err
	}
	if res.LoadedRSS, err = settledRSS(ctx, g.PID()); err != nil {
		return res, err
	}
	after, err := runtimeGauges(ctx, g.URL)
	if err != nil {
		return res, err
	}
	added := float64(total - warmUp)
	res.BytesPerSession = float64(res.LoadedRSS-res.BaselineRSS) / added
	res.GoroutinesPerSession = (after["go_goroutines"] - before["go_goroutines"]) / added
	res.HeapPerSession = (after["go_memstats_heap_inuse_bytes"] - before["go_memstats_heap_inuse_bytes"]) / added
	res.StackPerSession = (after["go_memstats_stack_inuse_bytes"] - before["go_memstats_stack_inuse_bytes"]) / added
	return res, nil
}

// runtimeGauges reads the Go runtime's gauges from the gateway's /metrics (open without an
// admin key in the default open mode).
func runtimeGauges(ctx context.Context, gatewayURL string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gatewayURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	return parseGauges(resp.Body, "go_goroutines", "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes")
}

// parseGauges picks unlabelled samples out of the Prometheus text format.
func parseGauges(r io.Reader, names ...string) (map[string]float64, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 || !want[fields[0]] {
			continue
		}
		v, err := strconv.ParseFloat(fields[1], 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", fields[0], err)
		}
		out[fields[0]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("no %s in /metrics", n)
		}
	}
	return out, nil
}

// settledRSS reads VmRSS until two readings half a second apart differ by under 1% (the
// gateway finishes the last sessions' set-up and its garbage collector runs), for at most
// ten seconds, and returns the last reading.
func settledRSS(ctx context.Context, pid int) (int64, error) {
	prev, err := rssBytes(pid)
	if err != nil {
		return 0, err
	}
	for range 20 {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		cur, err := rssBytes(pid)
		if err != nil {
			return 0, err
		}
		if diff := cur - prev; diff < prev/100 && -diff < prev/100 {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}
