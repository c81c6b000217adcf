package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The wired binary serves the OpenAI-compatible surface: agents are models, any other model
// name reaches the provider chain through the passthrough agent, and /v1/models lists the
// primary provider's default model.
func TestServeWiresTheOpenAISurface(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := map[string]string{
		"DARTMOUTH_ADDR":       "127.0.0.1:0",
		"DARTMOUTH_DATA_DIR":   t.TempDir(),
		"DARTMOUTH_LOG_FORMAT": "json",
	}
	logs, logw := io.Pipe()
	exited := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"serve"}, func(k string) string { return env[k] }, io.Discard, logw)
		logw.Close()
		exited <- err
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "dartmouth listening" {
				addr <- rec["addr"].(string)
			}
		}
		_, _ = io.Copy(io.Discard, logs)
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-exited:
		t.Fatalf("serve exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not listening after 30s")
	}
	defer func() {
		cancel()
		if err := <-exited; err != nil {
			t.Errorf("serve: %v", err)
		}
		http.DefaultClient.CloseIdleConnections()
	}()

	for _, model := range []string{"fam", "some-upstream-model"} {
		resp, err := http.Post(base+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"Hello!"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Model   string `json:"model"`
			Choices []struct {
				Message struct{ Content string } `json:"message"`
			} `json:"choices"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || out.Model != model || len(out.Choices) != 1 || !strings.HasPrefix(out.Choices[0].Message.Content, "Hello!") {
			t.Fatalf("%s: %d %+v %v", model, resp.StatusCode, out, err)
		}
	}
	resp, err := http.Get(base + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	var ids []string
	for _, m := range list.Data {
		ids = append(ids, m.ID)
	}
	if err != nil || strings.Join(ids, ",") != "artwork,fam,pa,support,dartmouth-offline-1" {
		t.Fatalf("models %v %v", ids, err)
	}
}

func TestListedModelsNameThePrimaryProvider(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{OpenAIAPIKey: "sk", OpenAIModel: "gpt-4o-mini", AnthropicAPIKey: "ak", AnthropicModel: "claude-haiku-4-5"}, "gpt-4o-mini/openai"},
		{Config{OpenAIBaseURL: "http://localhost:11434/v1", OpenAIModel: "llama3.2"}, "llama3.2/openai"},
		{Config{AnthropicAPIKey: "ak", AnthropicModel: "claude-haiku-4-5"}, "claude-haiku-4-5/anthropic"},
		{Config{}, "dartmouth-offline-1/dartmouth"},
	} {
		got := listedModels(&tc.cfg)
		if len(got) != 1 || got[0].ID+"/"+got[0].OwnedBy != tc.want {
			t.Errorf("%+v: got %+v, want %s", tc.cfg, got, tc.want)
		}
	}
}
