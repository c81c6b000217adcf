package offline

import (
	"reflect"
	"slices"
	"testing"
)

func TestParseKnowledge(t *testing.T) {
	tests := []struct {
		name string
		md   string
		want []Section
	}{
		{
			name: "sections",
			md:   "# Alpha\nFirst body.\n\n# Beta\nline one\nline two\n## Not a section\nmore\n",
			want: []Section{
				{Title: "Alpha", Body: "First body."},
				{Title: "Beta", Body: "line one\nline two\n## Not a section\nmore"},
			},
		},
		{
			name: "windows line endings",
			md:   "# Alpha\r\nbody\r\n# Beta\r\nother",
			want: []Section{{Title: "Alpha", Body: "body"}, {Title: "Beta", Body: "other"}},
		},
		{name: "title only", md: "# Lonely", want: []Section{{Title: "Lonely", Body: ""}}},
		{name: "empty", md: "  \n\n", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseKnowledge(tt.md); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseKnowledge = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestBuiltinKnowledgeParses(t *testing.T) {
	sections := ParseKnowledge(builtinKnowledge)
	if len(sections) < 10 {
		t.Fatalf("built-in knowledge has %d sections, want at least 10", len(sections))
	}
	seen := map[string]bool{}
	for _, s := range sections {
		if s.Title == "" || s.Body == "" || seen[s.Title] {
			t.Errorf("section %q: want a unique title and a body, got body %q", s.Title, s.Body)
		}
		seen[s.Title] = true
	}
}

func titles(hits []Hit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, h.Section.Title)
	}
	return out
}

func TestIndexSearch(t *testing.T) {
	ix := NewIndex([]Section{
		{Title: "Rate limits", Body: "Requests are limited per user: 20 requests per hour on the free plan."},
		{Title: "Voice", Body: "Speech is routed through tiers to keep costs down."},
		{Title: "Cooking", Body: "The chef raised her voice over the kitchen noise while the pasta boiled in salted water."},
		{Title: "Gardening", Body: "Water the plants every morning."},
	})
	tests := []struct {
		name  string
		query string
		limit int
		want  []string // titles, best first
	}{
		{"title outranks a passing mention", "voice", 0, []string{"Voice", "Cooking"}},
		{"plural finds singular", "What are the rate limits?", 0, []string{"Rate limits"}},
		{"more matched terms rank higher", "free plan requests per hour", 0, []string{"Rate limits"}},
		{"limit", "voice", 1, []string{"Voice"}},
		{"nothing matches", "astronomy", 0, nil},
		{"stopwords only", "what is the", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits := ix.Search(tt.query, tt.limit)
			if got := titles(hits); !slices.Equal(got, tt.want) {
				t.Errorf("Search(%q) = %v, want %v", tt.query, got, tt.want)
			}
			for i, h := range hits {
				if h.Matched < 1 || h.Score <= 0 {
					t.Errorf("hit %d = %+v, want a positive score and a match", i, h)
				}
				if i > 0 && h.Score > hits[i-1].Score {
					t.Errorf("hits not sorted by score: %v after %v", h.Score, hits[i-1].Score)
				}
			}
		})
	}
}

// On the built-in knowledge, each question's own section comes first.
func TestBuiltinIndexRanking(t *testing.T) {
	ix := NewIndex(ParseKnowledge(builtinKnowledge))
	tests := []struct{ query, want string }{
		{"how do I configure an OpenAI key?", "Configuring an OpenAI key or a local model"},
		{"what are the voice tiers?", "Voice tiers and speech"},
		{"what are the rate limits?", "Rate limits"},
		{"how does the websocket work", "WebSocket sessions"},
		{"which health checks should a load balancer use", "Health checks"},
	}
	for _, tt := range tests {
		hits := ix.Search(tt.query, 3)
		if len(hits) == 0 || hits[0].Section.Title != tt.want {
			t.Errorf("Search(%q) = %v, want %q first", tt.query, titles(hits), tt.want)
		}
	}
}
