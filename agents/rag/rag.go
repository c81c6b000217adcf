// Package rag is retrieval for the agents: documents are cut into sections, embedded (OpenAI
// or a local hashed bag of words), stored with the SQL store, and searched by cosine
// similarity. Agents consume the small Retriever interface; Index implements it.
package rag

import (
	"context"

	"github.com/dartmouth-gw/dartmouth/session"
)

// DefaultKB is the knowledge base used when none is named.
const DefaultKB = "default"

// Hit is a chunk that matches a query.
type Hit struct {
	// Doc is the document's name ("returns.md").
	Doc string `json:"doc"`
	// Section is the heading path of the chunk ("Refunds › Refund window"); empty for text
	// before the first heading.
	Section string `json:"section"`
	Text    string `json:"text"`
	// Score is the cosine similarity between the query and the chunk, in [-1, 1].
	Score float64 `json:"score"`
	// Coverage is the share of the query's words the chunk contains, each weighted by how
	// rare it is in the knowledge base, in [0, 1].
	Coverage float64 `json:"coverage"`
}

// Citation names where a hit comes from: "returns.md › Refund window".
func (h Hit) Citation() string {
	if h.Section == "" {
		return h.Doc
	}
	return h.Doc + " › " + h.Section
}

// Retriever finds the chunks of a knowledge base that answer a query: at most k, best first,
// only those scoring at least the retriever's threshold. No hit means nothing relevant.
type Retriever interface {
	Search(ctx context.Context, kb, query string, k int) ([]Hit, error)
}

// Store is the persistence Index needs; session.SQLStore implements it.
type Store interface {
	KBRevision(ctx context.Context, kb string) (int64, error)
	GetDocument(ctx context.Context, kb, name string) (session.KBDocument, error)
	ListDocuments(ctx context.Context, kb string) ([]session.KBDocument, error)
	PutDocument(ctx context.Context, doc session.KBDocument, chunks []session.KBChunk) (session.KBDocument, error)
	DeleteDocument(ctx context.Context, kb, name string) error
	ListChunks(ctx context.Context, kb string) ([]session.KBChunk, error)
	GetEmbeddings(ctx context.Context, keys []string) (map[string][]float32, error)
	PutEmbeddings(ctx context.Context, embs []session.Embedding) error
}

var _ Store = (*session.SQLStore)(nil)

// Embedder turns texts into vectors.
type Embedder interface {
	// Model names the vector space. Vectors of different models are never compared, and the
	// cache keys on it.
	Model() string
	// Embed returns one vector per text, in order.
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// thresholder is implemented by embedders whose scores need their own threshold.
type thresholder interface {
	DefaultThreshold() float64
}
