package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dartmouth-gw/dartmouth/gateway"
)

// Config is every setting of the binary. Each comes from a flag, else from its environment
// variable, else from its default; the table in bindConfig documents all three.
type Config struct {
	Addr            string        // listen address
	DataDir         string        // SQLite file and local blobs
	DatabaseURL     string        // postgres:// URL the replicas share; empty keeps SQLite in DataDir
	LogLevel        string        // debug, info, warn, error
	LogFormat       string        // text or json
	BodyLimit       int64         // bytes
	RequestTimeout  time.Duration // per HTTP request and per WebSocket turn
	ShutdownGrace   time.Duration // how long in-flight streams may finish on SIGTERM
	CORSOrigins     string        // comma-separated browser origins
	WSMaxFrameBytes int64
	WSIdleTimeout   time.Duration

	OpenAIAPIKey      string
	OpenAIBaseURL     string
	OpenAIModel       string
	AnthropicAPIKey   string
	AnthropicBaseURL  string
	AnthropicModel    string
	FirstTokenTimeout time.Duration
	OfflineFallback   bool

	PricesFile     string  // JSON price table laid over the built-in one
	ResponseCache  bool    // exact-match LLM response cache
	CacheTTLs      string  // per-intent cache lifetimes, "greeting=168h,information=30m"
	BudgetDaily    float64 // USD across all agents, 0 = none
	BudgetMonthly  float64
	AgentBudgets   string // "fam=1/day,support=20/month"
	CriticalAgents string // agents that keep answering at 100%
	BudgetWebhook  string // URL that receives budget alerts
	SavingModel    string // model used in cost-saving mode
	SummaryLLM     bool   // let the model write the running summary of long conversations

	Voice            bool   // speech endpoints and providers
	LocalTTSEngine   string // flite, espeak-ng or "" (flite when installed)
	WhisperURL       string // self-hosted Whisper-compatible server (base URL with /v1)
	WhisperAPIKey    string
	F5URL            string // F5-TTS behind an OpenAI-compatible /v1/audio/speech wrapper
	F5Addr           string // F5-TTS raw socket server host:port
	ElevenLabsAPIKey string
	ElevenLabsVoice  string
	S3Bucket         string // blobs in S3/R2 instead of the local folder
	S3Endpoint       string
	S3Region         string
	S3AccessKey      string
	S3SecretKey      string
	S3Prefix         string

	RedisURL   string // redis:// URL the replicas share; empty keeps rate limits in memory
	RateLimit  bool   // false turns rate limits off
	RateLimits string // quota per plan, "free=20/h,paid=1000/h,premium=10000/h"

	// Scheduled jobs (jobs.go); an interval of 0 turns a job off.
	ReminderInterval  time.Duration
	CleanupInterval   time.Duration
	SessionIdle       time.Duration // a session's state is cleared after this long without activity
	ArchiveInterval   time.Duration
	ArchiveDays       int64 // conversations idle this many days go to the blob store; 0: never
	AnalyticsInterval time.Duration
	WarmInterval      time.Duration

	Auth      string        // open or keys
	AdminKey  string        // opens the operations endpoints
	JWTSecret string        // signs session tokens; empty: random per process
	JWTTTL    time.Duration // session token lifetime

	SentryDSN      string        // report 5xx errors and panics to this Sentry project
	DebugAddr      string        // serve Go's pprof profiles on this address; empty: off
	AnalyticsFlush time.Duration // longest an analytics event waits in memory before its batch is written

	// Reminder notifications by email (SendGrid) and SMS (Twilio); off when unset.
	SendGridAPIKey   string
	SendGridBaseURL  string
	EmailFrom        string
	TwilioAccountSID string
	TwilioAuthToken  string
	TwilioFrom       string
	TwilioBaseURL    string

	// WebRTC: STUN/TURN servers (comma-separated URLs, one username and credential for the
	// TURN ones) and the UDP port range of the ICE candidates.
	ICEServers    string
	TURNUsername  string
	TURNPassword  string
	WebRTCUDPPort string
}

type setting struct {
	flag, env, def, help string
	bind                 func(fs *flag.FlagSet, name, value, help string)
}

func str(p *string) func(*flag.FlagSet, string, string, string) {
	return func(fs *flag.FlagSet, name, value, help string) { fs.StringVar(p, name, value, help) }
}

func dur(p *time.Duration) func(*flag.FlagSet, string, string, string) {
	return func(fs *flag.FlagSet, name, value, help string) {
		fs.Func(name, help, func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("not a duration (like 30s or 2m): %q", v)
			}
			*p = d
			return nil
		})
		*p, _ = time.ParseDuration(value)
	}
}

func i64(p *int64) func(*flag.FlagSet, string, string, string) {
	return func(fs *flag.FlagSet, name, value, help string) {
		v, _ := strconv.ParseInt(value, 10, 64)
		fs.Int64Var(p, name, v, help)
	}
}

func f64(p *float64) func(*flag.FlagSet, string, string, string) {
	return func(fs *flag.FlagSet, name, value, help string) {
		v, _ := strconv.ParseFloat(value, 64)
		fs.Float64Var(p, name, v, help)
	}
}

func boolean(p *bool) func(*flag.FlagSet, string, string, string) {
	return func(fs *flag.FlagSet, name, value, help string) {
		v, _ := strconv.ParseBool(value)
		fs.BoolVar(p, name, v, help)
	}
}

func settings(c *Config) []setting {
	return []setting{
		{"addr", "DARTMOUTH_ADDR", ":8080", "address to listen on", str(&c.Addr)},
		{"data-dir", "DARTMOUTH_DATA_DIR", "./data", "folder for the SQLite database and local blobs", str(&c.DataDir)},
		{"database-url", "DARTMOUTH_DATABASE_URL", "", "PostgreSQL shared by the replicas (postgres://user:password@host:5432/dbname?sslmode=require); empty keeps SQLite in the data folder", str(&c.DatabaseURL)},
		{"log-level", "DARTMOUTH_LOG_LEVEL", "info", "debug, info, warn or error", str(&c.LogLevel)},
		{"log-format", "DARTMOUTH_LOG_FORMAT", "text", "text or json", str(&c.LogFormat)},
		{"body-limit", "DARTMOUTH_BODY_LIMIT", "1048576", "largest request body, in bytes", i64(&c.BodyLimit)},
		{"request-timeout", "DARTMOUTH_REQUEST_TIMEOUT", "30s", "deadline of every request and WebSocket turn", dur(&c.RequestTimeout)},
		{"shutdown-grace", "DARTMOUTH_SHUTDOWN_GRACE", "15s", "how long in-flight streams may finish after SIGTERM", dur(&c.ShutdownGrace)},
		{"cors-origins", "DARTMOUTH_CORS_ORIGINS", "", "comma-separated browser origins allowed by CORS and WebSocket checks", str(&c.CORSOrigins)},
		{"ws-max-frame", "DARTMOUTH_WS_MAX_FRAME", "65536", "largest WebSocket message, in bytes", i64(&c.WSMaxFrameBytes)},
		{"ws-idle-timeout", "DARTMOUTH_WS_IDLE_TIMEOUT", "5m", "close WebSockets silent for this long", dur(&c.WSIdleTimeout)},
		{"openai-api-key", "OPENAI_API_KEY", "", "OpenAI key; enables the OpenAI provider", str(&c.OpenAIAPIKey)},
		{"openai-base-url", "OPENAI_BASE_URL", "", "OpenAI-compatible base URL (Ollama, vLLM, llama.cpp); enables the provider without a key", str(&c.OpenAIBaseURL)},
		{"openai-model", "DARTMOUTH_OPENAI_MODEL", "gpt-4o-mini", "model for the OpenAI provider", str(&c.OpenAIModel)},
		{"anthropic-api-key", "ANTHROPIC_API_KEY", "", "Anthropic key; enables the Anthropic provider (the fallback)", str(&c.AnthropicAPIKey)},
		{"anthropic-base-url", "ANTHROPIC_BASE_URL", "https://api.anthropic.com", "Anthropic API base URL", str(&c.AnthropicBaseURL)},
		{"anthropic-model", "DARTMOUTH_ANTHROPIC_MODEL", "claude-haiku-4-5", "model for the Anthropic provider", str(&c.AnthropicModel)},
		{"first-token-timeout", "DARTMOUTH_FIRST_TOKEN_TIMEOUT", "15s", "fall back to the next provider when one is silent this long", dur(&c.FirstTokenTimeout)},
		{"offline-fallback", "DARTMOUTH_OFFLINE_FALLBACK", "true", "answer with the offline engine when every model provider fails", boolean(&c.OfflineFallback)},
		{"prices", "DARTMOUTH_PRICES", "", "JSON price table laid over the built-in one (models per 1M tokens, TTS per char, STT per minute)", str(&c.PricesFile)},
		{"response-cache", "DARTMOUTH_RESPONSE_CACHE", "true", "reuse complete model replies for identical requests", boolean(&c.ResponseCache)},
		{"cache-ttls", "DARTMOUTH_CACHE_TTLS", "", "per-intent cache lifetimes over the defaults (greeting=168h,howto=24h,calculation=1h,information=30m,time=0; others 5m)", str(&c.CacheTTLs)},
		{"budget-daily", "DARTMOUTH_BUDGET_DAILY", "0", "daily budget in USD for all agents; 0 means none", f64(&c.BudgetDaily)},
		{"budget-monthly", "DARTMOUTH_BUDGET_MONTHLY", "0", "monthly budget in USD for all agents; 0 means none", f64(&c.BudgetMonthly)},
		{"agent-budgets", "DARTMOUTH_AGENT_BUDGETS", "", "per-agent budgets, agent=USD/day or agent=USD/month, comma-separated", str(&c.AgentBudgets)},
		{"critical-agents", "DARTMOUTH_CRITICAL_AGENTS", "", "agents that keep answering when a budget is spent", str(&c.CriticalAgents)},
		{"budget-webhook", "DARTMOUTH_BUDGET_WEBHOOK", "", "URL that receives budget alerts (50/80/90/100%) as JSON", str(&c.BudgetWebhook)},
		{"saving-model", "DARTMOUTH_SAVING_MODEL", "", "cheaper model used in cost-saving mode (at 90% of a budget); empty keeps the model", str(&c.SavingModel)},
		{"summary-llm", "DARTMOUTH_SUMMARY_LLM", "true", "let the model summarize long conversations (once per block of old turns); false keeps the extractive summary", boolean(&c.SummaryLLM)},
		{"voice", "DARTMOUTH_VOICE", "true", "speech endpoints (TTS, STT) and their providers", boolean(&c.Voice)},
		{"local-tts-engine", "DARTMOUTH_LOCAL_TTS_ENGINE", "", "local TTS engine: flite or espeak-ng; empty picks flite when installed", str(&c.LocalTTSEngine)},
		{"whisper-url", "DARTMOUTH_WHISPER_URL", "", "self-hosted Whisper-compatible server, base URL with /v1 (self-hosted STT tier)", str(&c.WhisperURL)},
		{"whisper-api-key", "DARTMOUTH_WHISPER_API_KEY", "", "key for the self-hosted Whisper server, if it wants one", str(&c.WhisperAPIKey)},
		{"f5-url", "DARTMOUTH_F5_URL", "", "F5-TTS behind an OpenAI-compatible /v1/audio/speech server, base URL (self-hosted TTS tier)", str(&c.F5URL)},
		{"f5-addr", "DARTMOUTH_F5_ADDR", "", "F5-TTS raw socket server, host:port (self-hosted TTS tier)", str(&c.F5Addr)},
		{"elevenlabs-api-key", "ELEVENLABS_API_KEY", "", "ElevenLabs key; enables the premium TTS tier", str(&c.ElevenLabsAPIKey)},
		{"sendgrid-api-key", "DARTMOUTH_SENDGRID_API_KEY", "", "SendGrid key; reminders are also emailed to the user's \"me\" contact", str(&c.SendGridAPIKey)},
		{"sendgrid-base-url", "DARTMOUTH_SENDGRID_BASE_URL", "", "SendGrid API base URL (default https://api.sendgrid.com)", str(&c.SendGridBaseURL)},
		{"email-from", "DARTMOUTH_EMAIL_FROM", "", "sender of reminder emails: a@b or Name <a@b>", str(&c.EmailFrom)},
		{"twilio-account-sid", "DARTMOUTH_TWILIO_ACCOUNT_SID", "", "Twilio account; reminders are also texted to the user's \"me\" contact", str(&c.TwilioAccountSID)},
		{"twilio-auth-token", "DARTMOUTH_TWILIO_AUTH_TOKEN", "", "Twilio auth token", str(&c.TwilioAuthToken)},
		{"twilio-from", "DARTMOUTH_TWILIO_FROM", "", "sending number, or a messaging service SID (MG…)", str(&c.TwilioFrom)},
		{"ice-servers", "DARTMOUTH_ICE_SERVERS", "", "STUN/TURN URLs for WebRTC, comma-separated (stun:host:3478,turn:host:3478); empty: host candidates only", str(&c.ICEServers)},
		{"turn-username", "DARTMOUTH_TURN_USERNAME", "", "username for the TURN servers", str(&c.TURNUsername)},
		{"turn-password", "DARTMOUTH_TURN_PASSWORD", "", "credential for the TURN servers", str(&c.TURNPassword)},
		{"webrtc-udp-ports", "DARTMOUTH_WEBRTC_UDP_PORTS", "", "UDP port range of WebRTC candidates, MIN-MAX; empty: any", str(&c.WebRTCUDPPort)},
		{"twilio-base-url", "DARTMOUTH_TWILIO_BASE_URL", "", "Twilio API base URL (default https://api.twilio.com)", str(&c.TwilioBaseURL)},
		{"elevenlabs-voice", "DARTMOUTH_ELEVENLABS_VOICE", "", "ElevenLabs voice id; empty uses the provider default", str(&c.ElevenLabsVoice)},
		{"s3-bucket", "DARTMOUTH_S3_BUCKET", "", "keep blobs (the TTS cache) in this S3/R2 bucket instead of the data folder", str(&c.S3Bucket)},
		{"s3-endpoint", "DARTMOUTH_S3_ENDPOINT", "", "S3-compatible endpoint (R2, MinIO); empty is AWS", str(&c.S3Endpoint)},
		{"s3-region", "DARTMOUTH_S3_REGION", "", "S3 region; empty is auto for custom endpoints, us-east-1 for AWS", str(&c.S3Region)},
		{"s3-access-key", "AWS_ACCESS_KEY_ID", "", "S3 access key", str(&c.S3AccessKey)},
		{"s3-secret-key", "AWS_SECRET_ACCESS_KEY", "", "S3 secret key", str(&c.S3SecretKey)},
		{"s3-prefix", "DARTMOUTH_S3_PREFIX", "", "key prefix inside the bucket", str(&c.S3Prefix)},
		{"redis-url", "DARTMOUTH_REDIS_URL", "", "Redis shared by the replicas (redis://[:password@]host:6379/0) for exact rate limits; empty counts in memory, per process", str(&c.RedisURL)},
		{"rate-limit", "DARTMOUTH_RATE_LIMIT", "true", "limit requests per caller and plan; false turns limits off", boolean(&c.RateLimit)},
		{"rate-limits", "DARTMOUTH_RATE_LIMITS", "free=20/h,paid=1000/h,premium=10000/h", "quota per plan, plan=requests/period (s, m, h, d or a duration); plans not named keep their default", str(&c.RateLimits)},
		{"reminder-interval", "DARTMOUTH_REMINDER_INTERVAL", "1s", "how often due reminders are looked for (how late one may fire)", dur(&c.ReminderInterval)},
		{"cleanup-interval", "DARTMOUTH_CLEANUP_INTERVAL", "1h", "how often idle sessions' state (rolling summaries) is cleared; 0 turns it off", dur(&c.CleanupInterval)},
		{"session-idle", "DARTMOUTH_SESSION_IDLE", "24h", "how long a session goes without activity before its state is cleared", dur(&c.SessionIdle)},
		{"archive-interval", "DARTMOUTH_ARCHIVE_INTERVAL", "6h", "how often finished conversations are archived; 0 turns archival off", dur(&c.ArchiveInterval)},
		{"archive-days", "DARTMOUTH_ARCHIVE_DAYS", "30", "conversations idle this many days move to the blob store (archive/YYYY/MM/<id>.json.gz) and leave the database; 0 keeps them", i64(&c.ArchiveDays)},
		{"analytics-interval", "DARTMOUTH_ANALYTICS_INTERVAL", "1h", "how often analytics events are rolled up by the hour; 0 turns it off", dur(&c.AnalyticsInterval)},
		{"warm-interval", "DARTMOUTH_WARM_INTERVAL", "24h", "how often caches are warmed (the TTS cache with the day's most frequent sentences), when a warmer is wired; 0 turns it off", dur(&c.WarmInterval)},
		{"auth", "DARTMOUTH_AUTH", "open", "open (no authentication: anyone may call, as any user; for your own machine) or keys (API keys made by dartmouth keys create, and session tokens)", str(&c.Auth)},
		{"admin-key", "DARTMOUTH_ADMIN_KEY", "", "key of the operations endpoints (costs, metrics, dashboard), at least 16 characters; empty: they are open in open mode, closed in keys mode", str(&c.AdminKey)},
		{"jwt-secret", "DARTMOUTH_JWT_SECRET", "", "secret signing session tokens (HS256), at least 32 bytes, the same on every replica; empty: random per process, so tokens end with it", str(&c.JWTSecret)},
		{"jwt-ttl", "DARTMOUTH_JWT_TTL", "15m", "lifetime of session tokens minted by POST /api/v2/auth/token", dur(&c.JWTTTL)},
		{"analytics-flush", "DARTMOUTH_ANALYTICS_FLUSH", "2s", "analytics events are written in batches of 500, or after waiting this long; the rest is written at shutdown", dur(&c.AnalyticsFlush)},
		{"debug-addr", "DARTMOUTH_DEBUG_ADDR", "", "serve Go's profiles (/debug/pprof/) on this address, e.g. 127.0.0.1:6060; unauthenticated, so keep it on loopback; empty: off", str(&c.DebugAddr)},
		{"sentry-dsn", "SENTRY_DSN", "", "Sentry DSN: errors answered 5xx and panics are reported there (tags: request id, route, user id; never keys or bodies); SENTRY_ENVIRONMENT names the environment", str(&c.SentryDSN)},
	}
}

// parseConfig reads flags over environment variables over defaults.
func parseConfig(name string, args []string, getenv func(string) string, out io.Writer) (*Config, error) {
	cfg, rest, err := parseConfigArgs(name, args, getenv, out, nil)
	if err == nil && len(rest) > 0 {
		return nil, fmt.Errorf("unexpected argument %q", rest[0])
	}
	return cfg, err
}

// parseConfigArgs is parseConfig for subcommands that take arguments and flags of their own
// (extra registers them); it returns the arguments left after the flags.
func parseConfigArgs(name string, args []string, getenv func(string) string, out io.Writer, extra func(*flag.FlagSet)) (*Config, []string, error) {
	cfg := &Config{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	if extra != nil {
		extra(fs)
	}
	all := settings(cfg)
	for _, s := range all {
		value := s.def
		if v := getenv(s.env); v != "" {
			value = v
		}
		s.bind(fs, s.flag, value, s.help)
	}
	fs.Usage = func() { printUsage(out, name, all) }
	// Environment values go through the same parsing as flags, so a bad one is reported.
	for _, s := range all {
		if v := getenv(s.env); v != "" {
			if err := fs.Set(s.flag, v); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", s.env, err)
			}
		}
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	return cfg, fs.Args(), cfg.validate()
}

func (c *Config) validate() error {
	switch {
	case c.BodyLimit <= 0:
		return fmt.Errorf("body-limit must be positive")
	case c.WSMaxFrameBytes <= 0:
		return fmt.Errorf("ws-max-frame must be positive")
	case c.RequestTimeout <= 0 || c.ShutdownGrace < 0 || c.FirstTokenTimeout <= 0 || c.WSIdleTimeout <= 0 || c.AnalyticsFlush <= 0:
		return fmt.Errorf("timeouts must be positive")
	case c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("log-format must be text or json")
	case c.BudgetDaily < 0 || c.BudgetMonthly < 0:
		return fmt.Errorf("budgets must not be negative")
	}
	if err := c.validateDatabase(); err != nil {
		return err
	}
	if err := c.validateAuth(); err != nil {
		return err
	}
	if err := c.validateJobs(); err != nil {
		return err
	}
	return c.validateRateLimits()
}

func (c *Config) origins() []string {
	var out []string
	for _, o := range strings.Split(c.CORSOrigins, ",") {
		if o = strings.TrimRight(strings.TrimSpace(o), "/"); o != "" {
			out = append(out, o)
		}
	}
	return out
}

func printUsage(out io.Writer, name string, all []setting) {
	fmt.Fprintf(out, `Dartmouth, the self-hosted voice and text gateway for AI agents.

Usage:
  dartmouth [serve] [flags]   start the gateway (the default)
  dartmouth migrate [flags]   apply database migrations and exit
  dartmouth kb ingest PATH    ingest Markdown into a knowledge base (--kb NAME; also list,
                              search QUERY, delete DOC); the embedder comes from
                              DARTMOUTH_EMBEDDINGS (local, openai, auto) and
                              DARTMOUTH_EMBEDDING_MODEL (text-embedding-3-small)
  dartmouth keys create --user U --plan free|paid|premium [--name N]
                              make an API key (printed once); also keys list --user U,
                              keys revoke --user U ID
  dartmouth backup [--to KEY] write a consistent snapshot of the database to the blob
                              store (portable between SQLite and PostgreSQL)
  dartmouth restore KEY [--force]
                              restore a backup (refused into a database with rows)
  dartmouth say [flags] TEXT  speak TEXT through the voice router into a file
                              (-o FILE, default say.wav; --tier; --voice; the format
                              follows the file's extension: wav, mp3, pcm, ulaw, alaw, opus)
  dartmouth version           print the version

Flags (each also read from its environment variable; flags win):
`)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	for _, s := range all {
		def := s.def
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(tw, "  --%s\t%s\tdefault %s\t%s\n", s.flag, s.env, def, s.help)
	}
	tw.Flush()
	_ = name
}

// webRTC turns the WebRTC settings into the gateway's.
func (c *Config) webRTC() (gateway.WebRTCConfig, error) {
	var w gateway.WebRTCConfig
	for _, u := range strings.Split(c.ICEServers, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		s := gateway.ICEServer{URLs: []string{u}}
		if strings.HasPrefix(u, "turn:") || strings.HasPrefix(u, "turns:") {
			s.Username, s.Credential = c.TURNUsername, c.TURNPassword
		} else if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "stuns:") {
			return w, fmt.Errorf("ice-servers: %q is not a stun: or turn: URL", u)
		}
		w.ICEServers = append(w.ICEServers, s)
	}
	if c.WebRTCUDPPort != "" {
		lo, hi, ok := strings.Cut(c.WebRTCUDPPort, "-")
		min, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
		max, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
		if !ok || err1 != nil || err2 != nil || min == 0 || min > max {
			return w, fmt.Errorf("webrtc-udp-ports: %q: want MIN-MAX, such as 50000-50100", c.WebRTCUDPPort)
		}
		w.UDPPortMin, w.UDPPortMax = uint16(min), uint16(max)
	}
	return w, nil
}
