package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Text relay: what POST /v1/chat/completions through the gateway costs over calling the fake
// provider directly, streamed and not, measured interleaved so both see the same machine.

// relayKind is one of the four request kinds of the relay measurement.
type relayKind int

const (
	gatewayPlain relayKind = iota
	directPlain
	gatewayStream
	directStream
	relayKinds
)

// relayConfig sizes the relay measurement.
type relayConfig struct {
	Concurrency int // workers, each with its own keep-alive connections
	Requests    int // measured requests of each kind, after the warm-up
	WarmUp      int // requests of each kind discarded first
}

// relayResult holds the latencies of each kind, sorted, in milliseconds.
type relayResult struct {
	ms [relayKinds][]float64
}

// overhead is the latency the gateway adds at quantile q: the gateway's quantile minus the
// direct call's, both from the same interleaved run.
func (r relayResult) overhead(stream bool, q float64) float64 {
	gw, direct := gatewayPlain, directPlain
	if stream {
		gw, direct = gatewayStream, directStream
	}
	return quantile(r.ms[gw], q) - quantile(r.ms[direct], q)
}

func newLoopbackClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns: 4 * conns, MaxIdleConnsPerHost: 2 * conns, DisableCompression: true,
		IdleConnTimeout: time.Minute,
	}, Timeout: time.Minute}
}

// measureRelay runs the workers: each sends the four kinds in turn, rotating which goes first
// so no kind always follows another, and keeps the latencies after its share of the warm-up.
func measureRelay(ctx context.Context, gatewayURL, providerURL string, cfg relayConfig) (relayResult, error) {
	client := newLoopbackClient(cfg.Concurrency)
	defer client.CloseIdleConnections()
	urls := [relayKinds]string{
		gatewayPlain: gatewayURL + "/v1/chat/completions", gatewayStream: gatewayURL + "/v1/chat/completions",
		directPlain: providerURL + "/chat/completions", directStream: providerURL + "/chat/completions",
	}
	perWorker := (cfg.Requests + cfg.Concurrency - 1) / cfg.Concurrency
	warm := (cfg.WarmUp + cfg.Concurrency - 1) / cfg.Concurrency
	var mu sync.Mutex
	var lat [relayKinds][]time.Duration
	errs := make(chan error, cfg.Concurrency)
	var wg sync.WaitGroup
	for w := range cfg.Concurrency {
		wg.Go(func() {
			var mine [relayKinds][]time.Duration
			for i := range warm + perWorker {
				for k := range relayKinds {
					kind := (k + relayKind(i+w)) % relayKinds
					stream := kind == gatewayStream || kind == directStream
					// A unique message: the gateway's response cache must not answer it.
					body := fmt.Sprintf(`{"model":"bench-relay","stream":%t,"messages":[{"role":"user","content":"relay %d %d"}]}`, stream, w, i)
					d, err := timeCompletion(ctx, client, urls[kind], body, stream)
					if err != nil {
						errs <- fmt.Errorf("%s: %w", kindName(kind), err)
						return
					}
					if i >= warm {
						mine[kind] = append(mine[kind], d)
					}
				}
			}
			mu.Lock()
			for k := range mine {
				lat[k] = append(lat[k], mine[k]...)
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return relayResult{}, err
	}
	var res relayResult
	for k := range lat {
		res.ms[k] = millis(lat[k])
	}
	return res, nil
}

func kindName(k relayKind) string {
	return [...]string{"gateway non-streamed", "direct non-streamed", "gateway streamed", "direct streamed"}[k]
}

// timeCompletion sends one chat completion and returns how long it took to read the whole
// reply, checking it is the fake's reply.
func timeCompletion(ctx context.Context, client *http.Client, url, body string, stream bool) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d: %.300s", resp.StatusCode, data)
	}
	if got := bytes.Count(data, []byte(strings.TrimSpace(token))); got != shortReplyTokens {
		return 0, fmt.Errorf("reply has %d tokens, want %d: %.300s", got, shortReplyTokens, data)
	}
	if stream && !bytes.Contains(data, []byte("data: [DONE]")) {
		return 0, fmt.Errorf("stream ended without [DONE]: %.300s", data)
	}
	return elapsed, nil
}

// measureSSE streams tokens tokens through url (the gateway's /v1/chat/completions, or the
// provider's) and returns tokens per second, from sending the request to the last byte.
func measureSSE(ctx context.Context, client *http.Client, url string, tokens int) (float64, error) {
	body := fmt.Sprintf(`{"model":"%s%d","stream":true,"messages":[{"role":"user","content":"stream %d tokens"}]}`, sseModelPre, tokens, time.Now().UnixNano())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(resp.Body)
		return 0, fmt.Errorf("status %d: %.300s", resp.StatusCode, data)
	}
	got, done, err := countStreamedTokens(resp.Body)
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	if got != tokens || !done {
		return 0, fmt.Errorf("stream carried %d of %d tokens (finished: %t)", got, tokens, done)
	}
	return float64(tokens) / elapsed.Seconds(), nil
}

// countStreamedTokens reads an SSE stream of chat.completion.chunk frames to its end and
// counts the tokens in it, however the relay grouped them into frames.
func countStreamedTokens(r io.Reader) (tokens int, done bool, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	word := []byte(strings.TrimSpace(token))
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.Equal(line, []byte("data: [DONE]")) {
			done = true
			continue
		}
		if bytes.Contains(line, []byte(`"error"`)) {
			return tokens, done, fmt.Errorf("error in the stream: %.300s", line)
		}
		tokens += bytes.Count(line, word)
	}
	return tokens, done, sc.Err()
}
