package gateway_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/dartmouth-gw/dartmouth/voice"
	"github.com/dartmouth-gw/dartmouth/web"
)

const webAdminKey = "admin-key-for-tests-0123456789"

func withStatic(c *gateway.Config) { c.Static = web.FS() }

func withAdminKey(c *gateway.Config) { c.Auth.AdminKey = webAdminKey }

// fakeVoiceRouter answers at once (voiceFake) with a TTS cache in front.
func fakeVoiceRouter(t testing.TB) *voice.Router {
	t.Helper()
	fake := &voiceFake{tier: voice.TierLocal, name: "local-fake"}
	blobs, err := session.NewLocalBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cache, err := voice.NewTTSCache(voice.TTSCacheConfig{Blobs: blobs, KV: session.NewMemoryKV(nil)})
	if err != nil {
		t.Fatal(err)
	}
	router, err := voice.NewRouter(voice.RouterConfig{TTS: []voice.TTS{fake}, STT: []voice.STT{fake}, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	return router
}

// openAPIPath turns an Echo route pattern into the OpenAPI path that documents it.
func openAPIPath(route string) string {
	switch route {
	case "/*":
		return "/{file}"
	case "/v1/models/*":
		return "/v1/models/{model}"
	}
	return regexp.MustCompile(`:(\w+)`).ReplaceAllString(route, "{$1}")
}

// Every route the gateway registers is described in /openapi.json, and every operation there
// exists, so the reference at /docs can neither miss an endpoint nor invent one.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	g := startGateway(t, nil, withStatic, func(c *gateway.Config) { c.Voice = fakeVoiceRouter(t) })
	raw, err := fs.ReadFile(web.FS(), "openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	if spec.OpenAPI != "3.1.0" {
		t.Fatalf("openapi version %q, want 3.1.0", spec.OpenAPI)
	}
	registered := map[string]bool{}
	for _, r := range g.Srv.EchoRoutes() {
		key := strings.ToLower(r.Method) + " " + openAPIPath(r.Path)
		registered[key] = true
		if _, ok := spec.Paths[openAPIPath(r.Path)][strings.ToLower(r.Method)]; !ok {
			t.Errorf("route %s %s is not in web/static/openapi.json (as %s)", r.Method, r.Path, key)
		}
	}
	for path, ops := range spec.Paths {
		for method := range ops {
			if method == "parameters" || method == "summary" || method == "description" {
				continue
			}
			if !registered[method+" "+path] {
				t.Errorf("openapi.json documents %s %s, which the gateway does not serve", strings.ToUpper(method), path)
			}
		}
	}
	// Every $ref points at something that exists.
	for _, m := range regexp.MustCompile(`"\$ref":\s*"#/components/(schemas|responses)/(\w+)"`).FindAllStringSubmatch(string(raw), -1) {
		if m[1] == "schemas" && spec.Components.Schemas[m[2]] == nil {
			t.Errorf("dangling $ref to schema %s", m[2])
		}
	}
	// /openapi.json and /docs are served.
	for _, p := range []string{"/openapi.json", "/docs"} {
		resp, err := http.Get(g.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Fatalf("GET %s: %d", p, resp.StatusCode)
		}
	}
}

func TestStaticFilesCaching(t *testing.T) {
	g := startGateway(t, nil, withStatic)
	widget, err := fs.ReadFile(web.FS(), "widget.js")
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string, header ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, g.URL+path, nil)
		req.Header.Set("Accept-Encoding", "identity") // the transport would otherwise ask for gzip itself
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}

	first, body := get("/widget.js")
	etag := first.Header.Get("ETag")
	if first.StatusCode != 200 || !bytes.Equal(body, widget) || !strings.HasPrefix(first.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("GET /widget.js: %d %q, %d bytes", first.StatusCode, first.Header.Get("Content-Type"), len(body))
	}
	if !regexp.MustCompile(`^"[0-9a-f]{20}"$`).MatchString(etag) || first.Header.Get("Cache-Control") != "public, max-age=3600" {
		t.Fatalf("widget.js: ETag %q, Cache-Control %q", etag, first.Header.Get("Cache-Control"))
	}
	hash := strings.Trim(etag, `"`)

	cases := []struct {
		name, path   string
		header       []string
		status       int
		cacheControl string
		encoding     string
	}{
		{"revalidation", "/widget.js", []string{"If-None-Match", etag}, 304, "public, max-age=3600", ""},
		{"revalidation among others, weak", "/widget.js", []string{"If-None-Match", `"nope", W/` + etag}, 304, "public, max-age=3600", ""},
		{"stale etag", "/widget.js", []string{"If-None-Match", `"0000"`}, 200, "public, max-age=3600", ""},
		{"versioned url", "/widget.js?v=" + hash, nil, 200, "public, max-age=31536000, immutable", ""},
		{"stale version", "/widget.js?v=0123", nil, 200, "no-cache", ""},
		{"gzip", "/widget.js", []string{"Accept-Encoding", "br, gzip"}, 200, "public, max-age=3600", "gzip"},
		{"gzip refused", "/widget.js", []string{"Accept-Encoding", "gzip;q=0"}, 200, "public, max-age=3600", ""},
		{"gzip etag revalidates", "/widget.js", []string{"Accept-Encoding", "gzip", "If-None-Match", `"` + hash + `-gz"`}, 304, "public, max-age=3600", ""},
		{"demo page", "/", nil, 200, "no-cache", ""},
		{"dashboard page", "/dashboard", nil, 200, "no-cache", ""},
		{"docs page", "/docs", nil, 200, "no-cache", ""},
		{"openapi", "/openapi.json", nil, 200, "public, max-age=3600", ""},
		{"asset by path", "/dashboard.js", nil, 200, "public, max-age=3600", ""},
		{"missing", "/nope.js", nil, 404, "", ""},
		{"no escaping the site", "/../../go.mod", nil, 404, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(tc.path, tc.header...)
			if resp.StatusCode != tc.status || resp.Header.Get("Cache-Control") != tc.cacheControl || resp.Header.Get("Content-Encoding") != tc.encoding {
				t.Fatalf("%d, Cache-Control %q, Content-Encoding %q; want %d %q %q", resp.StatusCode, resp.Header.Get("Cache-Control"),
					resp.Header.Get("Content-Encoding"), tc.status, tc.cacheControl, tc.encoding)
			}
			switch {
			case tc.status == 304 && len(body) != 0:
				t.Fatalf("304 with a body of %d bytes", len(body))
			case tc.status == 404:
				var env map[string]any
				if json.Unmarshal(body, &env) != nil || errCode(env) != gateway.CodeNotFound {
					t.Fatalf("404 body %s", body)
				}
			case tc.encoding == "gzip":
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				plain, _ := io.ReadAll(zr)
				if !bytes.Equal(plain, widget) || resp.Header.Get("ETag") != `"`+hash+`-gz"` || !slices.Contains(resp.Header.Values("Vary"), "Accept-Encoding") {
					t.Fatalf("gzipped widget: %d bytes unzipped, ETag %q, Vary %q", len(plain), resp.Header.Get("ETag"), resp.Header.Values("Vary"))
				}
			}
		})
	}

	req, _ := http.NewRequest(http.MethodHead, g.URL+"/widget.js", nil)
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(widget)) || resp.Header.Get("ETag") != etag {
		t.Fatalf("HEAD /widget.js: %d, length %d, ETag %q", resp.StatusCode, resp.ContentLength, resp.Header.Get("ETag"))
	}
}

// The widget must stay small enough to paste on any page: under 50 KB gzipped.
func TestWidgetUnder50KBGzipped(t *testing.T) {
	widget, err := fs.ReadFile(web.FS(), "widget.js")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(widget)
	zw.Close()
	if buf.Len() >= 50*1024 {
		t.Fatalf("widget.js is %d bytes gzipped, over 50 KB", buf.Len())
	}
	t.Logf("widget.js: %d bytes, %d gzipped", len(widget), buf.Len())
}

func TestDashboardAPI(t *testing.T) {
	g := startGateway(t, nil, withAdminKey, func(c *gateway.Config) { c.Voice = fakeVoiceRouter(t) })

	dashboard := func(header ...string) (*http.Response, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/api/v2/dashboard", nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		return doJSON(t, req)
	}
	for _, tc := range []struct {
		name   string
		header []string
		status int
		code   string
	}{
		{"no key", nil, 401, gateway.CodeUnauthorized},
		{"wrong key", []string{"Authorization", "Bearer not-the-admin-key-at-all"}, 401, gateway.CodeUnauthorized},
		{"malformed header", []string{"Authorization", "Basic abc"}, 401, gateway.CodeUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := dashboard(tc.header...)
			if resp.StatusCode != tc.status || errCode(body) != tc.code {
				t.Fatalf("%d %v, want %d %s", resp.StatusCode, body, tc.status, tc.code)
			}
		})
	}

	// Traffic: two JSON chats, one streamed chat, one refused request, two identical syntheses.
	postJSON(t, g.URL+"/api/v2/chat", `{"agentId":"fam","message":"what is 6 * 7?"}`)
	postJSON(t, g.URL+"/api/v2/chat", `{"agentId":"fam","message":"what time is it?"}`)
	postJSON(t, g.URL+"/api/v2/chat", `{"agentId":"nobody","message":"hi"}`)
	resp, err := http.Post(g.URL+"/api/v2/chat/stream", "application/json", strings.NewReader(`{"agentId":"fam","message":"tell me about the voice tiers"}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for range 2 {
		resp, err := http.Post(g.URL+"/api/v2/voice/tts", "application/json", strings.NewReader(`{"text":"Hello there.","format":"wav"}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	for _, header := range [][]string{{"Authorization", "Bearer " + webAdminKey}, {"X-API-Key", webAdminKey}} {
		resp, d := dashboard(header...)
		if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("dashboard with %s: %d %v", header[0], resp.StatusCode, d)
		}
		num := func(path string) float64 {
			t.Helper()
			var cur any = d
			for _, k := range strings.Split(path, ".") {
				m, ok := cur.(map[string]any)
				if !ok {
					t.Fatalf("%s: no %s in %v", path, k, cur)
				}
				cur = m[k]
			}
			f, ok := cur.(float64)
			if !ok {
				t.Fatalf("%s is %v, not a number", path, cur)
			}
			return f
		}
		checks := []struct {
			path string
			want float64
		}{
			{"requests.total", 6}, // the dashboard's own polls are left out
			{"requests.rejected", 1},
			{"requests.errors", 0},
			{"costs.today.requests", 3},
			{"cache.tts.hits", 1},
			{"cache.tts.misses", 1},
			{"cache.tts.hitRate", 0.5},
			{"latency.chatFirstToken.count", 1},
			{"latency.voiceToVoice.count", 0},
			{"sessions.connected", 0},
		}
		for _, c := range checks {
			if got := num(c.path); got != c.want {
				t.Errorf("%s = %v, want %v", c.path, got, c.want)
			}
		}
		if p50 := num("latency.chatFirstToken.p50Ms"); p50 <= 0 || p50 > 10_000 {
			t.Errorf("chat first token p50 %v ms", p50)
		}
		if voiceProviders := d["providers"].(map[string]any)["voice"].([]any); len(voiceProviders) != 2 {
			t.Errorf("voice providers %v", voiceProviders)
		}
		agentsList := d["agents"].([]any)
		if len(agentsList) != 1 || agentsList[0].(map[string]any)["id"] != "fam" || agentsList[0].(map[string]any)["requestsToday"].(float64) != 3 {
			t.Errorf("agents %v", agentsList)
		}
	}
}
