package session

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// KBDocument is one document of a knowledge base (a Markdown file, an article posted through
// the API). Knowledge bases are the operator's, not a user's: they are named, not scoped.
type KBDocument struct {
	ID string
	// KB names the knowledge base: global ("default") or one per agent.
	KB string
	// Name identifies the document within its knowledge base, such as "returns.md" or
	// "billing/invoices.md"; answers cite it.
	Name  string
	Title string
	// ContentHash is the hex sha256 of the ingested content: unchanged content is not
	// ingested again.
	ContentHash string
	// Chunks is how many chunks the document was cut into.
	Chunks    int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// KBChunk is a retrievable piece of a document, usually one section.
type KBChunk struct {
	ID         string
	DocumentID string
	KB         string
	// Doc is the document's Name (filled on reads).
	Doc string
	// Seq orders the chunks of a document from 0.
	Seq int
	// Section is the heading path the chunk sits under ("Refunds › Refund window").
	Section string
	Text    string
	// Tokens is the chunk's estimated size in tokens.
	Tokens int
}

// Embedding is a cached vector: Key is EmbeddingKey(Model, text).
type Embedding struct {
	Key    string
	Model  string
	Vector []float32
}

// EmbeddingKey is the embedding cache key of a text under a model: hex sha256(model, text).
// The model is length-prefixed, so no model and text pair can collide with another.
func EmbeddingKey(model, text string) string {
	h := sha256.New()
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(model)))
	h.Write(n[:])
	h.Write([]byte(model))
	h.Write([]byte(text))
	return hex.EncodeToString(h.Sum(nil))
}

// encodeVector writes v as float32 little-endian.
func encodeVector(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

// decodeVector reads a float32 little-endian vector.
func decodeVector(b []byte) ([]float32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("vector of %d bytes is not a whole number of float32", len(b))
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}

// KBRevision is a counter bumped by every change to a knowledge base; 0 for one never
// written. Readers that keep a knowledge base in memory compare it to know they are current.
func (s *SQLStore) KBRevision(ctx context.Context, kb string) (int64, error) {
	var rev int64
	err := s.db.QueryRowContext(ctx, s.dialect.rebind(`SELECT revision FROM kb_revisions WHERE kb = ?`), kb).Scan(&rev)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("kb revision: %w", err)
	}
	return rev, nil
}

func (s *SQLStore) bumpRevision(ctx context.Context, tx *sql.Tx, kb string) error {
	_, err := tx.ExecContext(ctx, s.dialect.rebind(`INSERT INTO kb_revisions (kb, revision) VALUES (?, 1)
		ON CONFLICT (kb) DO UPDATE SET revision = kb_revisions.revision + 1`), kb)
	return err
}

// GetDocument returns a document by knowledge base and name, else ErrNotFound.
func (s *SQLStore) GetDocument(ctx context.Context, kb, name string) (KBDocument, error) {
	row := s.db.QueryRowContext(ctx, s.dialect.rebind(`SELECT id, kb, name, title, content_hash, chunks, created_at, updated_at
		FROM kb_documents WHERE kb = ? AND name = ?`), kb, name)
	d, err := scanDocument(row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return KBDocument{}, ErrNotFound
	}
	if err != nil {
		return KBDocument{}, fmt.Errorf("get document: %w", err)
	}
	return d, nil
}

func scanDocument(scan func(...any) error) (KBDocument, error) {
	var d KBDocument
	var created, updated int64
	if err := scan(&d.ID, &d.KB, &d.Name, &d.Title, &d.ContentHash, &d.Chunks, &created, &updated); err != nil {
		return KBDocument{}, err
	}
	d.CreatedAt, d.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return d, nil
}

// ListDocuments returns a knowledge base's documents by name.
func (s *SQLStore) ListDocuments(ctx context.Context, kb string) ([]KBDocument, error) {
	rows, err := s.db.QueryContext(ctx, s.dialect.rebind(`SELECT id, kb, name, title, content_hash, chunks, created_at, updated_at
		FROM kb_documents WHERE kb = ? ORDER BY name`), kb)
	if err != nil {
		return nil, fmt.Errorf("list documents: %w", err)
	}
	defer rows.Close()
	var out []KBDocument
	for rows.Next() {
		d, err := scanDocument(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("list documents: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list documents: %w", err)
	}
	return out, nil
}

// PutDocument stores a document and replaces its chunks in one transaction: a document is
// never seen half updated. It keeps the id and creation time of a document already stored
// under the same knowledge base and name, and returns what was stored.
func (s *SQLStore) PutDocument(ctx context.Context, doc KBDocument, chunks []KBChunk) (KBDocument, error) {
	if strings.TrimSpace(doc.KB) == "" || strings.TrimSpace(doc.Name) == "" {
		return KBDocument{}, errors.New("put document: knowledge base and name are required")
	}
	if doc.ContentHash == "" {
		return KBDocument{}, errors.New("put document: content hash is required")
	}
	now := s.now()
	doc.Chunks = len(chunks)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var id string
		var created int64
		err := tx.QueryRowContext(ctx, s.dialect.rebind(`SELECT id, created_at FROM kb_documents WHERE kb = ? AND name = ?`), doc.KB, doc.Name).Scan(&id, &created)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if doc.ID == "" {
				doc.ID = NewID("doc")
			}
			created = now
			if _, err := tx.ExecContext(ctx, s.dialect.rebind(`INSERT INTO kb_documents (id, kb, name, title, content_hash, chunks, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), doc.ID, doc.KB, doc.Name, doc.Title, doc.ContentHash, doc.Chunks, created, now); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			doc.ID = id
			if _, err := tx.ExecContext(ctx, s.dialect.rebind(`UPDATE kb_documents SET title = ?, content_hash = ?, chunks = ?, updated_at = ? WHERE id = ?`),
				doc.Title, doc.ContentHash, doc.Chunks, now, doc.ID); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, s.dialect.rebind(`DELETE FROM kb_chunks WHERE document_id = ?`), doc.ID); err != nil {
				return err
			}
		}
		doc.CreatedAt, doc.UpdatedAt = time.UnixMilli(created), time.UnixMilli(now)
		for i, c := range chunks {
			if _, err := tx.ExecContext(ctx, s.dialect.rebind(`INSERT INTO kb_chunks (id, document_id, kb, seq, section, content, tokens) VALUES (?, ?, ?, ?, ?, ?, ?)`),
				NewID("chk"), doc.ID, doc.KB, i, c.Section, c.Text, c.Tokens); err != nil {
				return err
			}
		}
		return s.bumpRevision(ctx, tx, doc.KB)
	})
	if err != nil {
		return KBDocument{}, fmt.Errorf("put document %s/%s: %w", doc.KB, doc.Name, err)
	}
	return doc, nil
}

// DeleteDocument removes a document and its chunks; ErrNotFound if there is none.
func (s *SQLStore) DeleteDocument(ctx context.Context, kb, name string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var id string
		err := tx.QueryRowContext(ctx, s.dialect.rebind(`SELECT id FROM kb_documents WHERE kb = ? AND name = ?`), kb, name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("delete document: %w", err)
		}
		// Chunks first: not every database enforces the cascade (SQLite needs a pragma).
		if _, err := tx.ExecContext(ctx, s.dialect.rebind(`DELETE FROM kb_chunks WHERE document_id = ?`), id); err != nil {
			return fmt.Errorf("delete document: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.dialect.rebind(`DELETE FROM kb_documents WHERE id = ?`), id); err != nil {
			return fmt.Errorf("delete document: %w", err)
		}
		if err := s.bumpRevision(ctx, tx, kb); err != nil {
			return fmt.Errorf("delete document: %w", err)
		}
		return nil
	})
}

// ListChunks returns every chunk of a knowledge base, by document name then order.
func (s *SQLStore) ListChunks(ctx context.Context, kb string) ([]KBChunk, error) {
	rows, err := s.db.QueryContext(ctx, s.dialect.rebind(`SELECT c.id, c.document_id, c.kb, d.name, c.seq, c.section, c.content, c.tokens
		FROM kb_chunks c JOIN kb_documents d ON d.id = c.document_id
		WHERE c.kb = ? ORDER BY d.name, c.seq`), kb)
	if err != nil {
		return nil, fmt.Errorf("list chunks: %w", err)
	}
	defer rows.Close()
	var out []KBChunk
	for rows.Next() {
		var c KBChunk
		if err := rows.Scan(&c.ID, &c.DocumentID, &c.KB, &c.Doc, &c.Seq, &c.Section, &c.Text, &c.Tokens); err != nil {
			return nil, fmt.Errorf("list chunks: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list chunks: %w", err)
	}
	return out, nil
}

// embeddingBatch bounds the keys of one IN (...) list, well under every engine's limit on
// bound parameters.
const embeddingBatch = 500

// GetEmbeddings returns the cached vectors of the keys that have one.
func (s *SQLStore) GetEmbeddings(ctx context.Context, keys []string) (map[string][]float32, error) {
	out := make(map[string][]float32, len(keys))
	for start := 0; start < len(keys); start += embeddingBatch {
		batch := keys[start:min(start+embeddingBatch, len(keys))]
		args := make([]any, len(batch))
		for i, k := range batch {
			args[i] = k
		}
		query := `SELECT key, vector FROM kb_embeddings WHERE key IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(batch)), ", ") + `)`
		if err := func() error {
			rows, err := s.db.QueryContext(ctx, s.dialect.rebind(query), args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var key string
				var raw []byte
				if err := rows.Scan(&key, &raw); err != nil {
					return err
				}
				v, err := decodeVector(raw)
				if err != nil {
					return fmt.Errorf("key %s: %w", key, err)
				}
				out[key] = v
			}
			return rows.Err()
		}(); err != nil {
			return nil, fmt.Errorf("get embeddings: %w", err)
		}
	}
	return out, nil
}

// PutEmbeddings caches vectors; a key already cached keeps its vector.
func (s *SQLStore) PutEmbeddings(ctx context.Context, embs []Embedding) error {
	if len(embs) == 0 {
		return nil
	}
	now := s.now()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, e := range embs {
			if e.Key == "" || len(e.Vector) == 0 {
				return fmt.Errorf("embedding %q: empty key or vector", e.Key)
			}
			if _, err := tx.ExecContext(ctx, s.dialect.rebind(`INSERT INTO kb_embeddings (key, model, dims, vector, created_at) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (key) DO NOTHING`), e.Key, e.Model, len(e.Vector), encodeVector(e.Vector), now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put embeddings: %w", err)
	}
	return nil
}

// Ticket statuses.
const (
	TicketOpen      = "open"      // new, waiting for the team
	TicketPending   = "pending"   // waiting for the customer
	TicketEscalated = "escalated" // handed to a person with urgency (anger, urgent, VIP)
	TicketClosed    = "closed"
)

// Ticket priorities.
const (
	PriorityUrgent = "urgent"
	PriorityHigh   = "high"
	PriorityMedium = "medium"
	PriorityLow    = "low"
)

// ValidTicketStatus reports whether s is a ticket status.
func ValidTicketStatus(s string) bool {
	switch s {
	case TicketOpen, TicketPending, TicketEscalated, TicketClosed:
		return true
	}
	return false
}

// ValidTicketPriority reports whether p is a ticket priority.
func ValidTicketPriority(p string) bool {
	switch p {
	case PriorityUrgent, PriorityHigh, PriorityMedium, PriorityLow:
		return true
	}
	return false
}

// Ticket is a support request handed to people. It belongs to a user; every read is scoped
// to one.
type Ticket struct {
	ID string
	// Number is the human reference, unique across the deployment (see Ref); assigned by
	// CreateTicket.
	Number    int64
	UserID    string
	AgentID   string
	SessionID string
	Subject   string
	// Description is what the customer said, for the person who picks the ticket up.
	Description string
	Status      string
	Priority    string
	// Reason says why it was opened: "requested", "frustration", "low_confidence", "api".
	Reason string
	// FirstResponseDue and ResolutionDue are the SLA deadlines; zero means none.
	FirstResponseDue time.Time
	ResolutionDue    time.Time
	CreatedAt        time.Time
	UpdatedAt        time.Time
	// ClosedAt is zero unless the ticket is closed.
	ClosedAt time.Time
	Metadata map[string]any
}

// Ref is how customers and staff name a ticket: "TKT-1001".
func (t Ticket) Ref() string { return fmt.Sprintf("TKT-%d", t.Number) }

// ParseTicketRef reads "TKT-1001", "tkt 1001", "#1001" or "1001" as a ticket number.
func ParseTicketRef(ref string) (int64, bool) {
	r := strings.ToUpper(strings.TrimSpace(ref))
	r = strings.TrimPrefix(r, "#")
	if rest, ok := strings.CutPrefix(r, "TKT"); ok {
		r = strings.TrimLeft(rest, "-_ #")
	}
	if r == "" || len(r) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range r {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, n > 0
}

// firstTicketNumber is one below the first number handed out, so references start at
// TKT-1001 and read as ticket numbers rather than counts.
const firstTicketNumber = 1000

func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func timeOrZero(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// CreateTicket stores a new ticket and returns it with its id (when empty), number and
// times. The user must exist.
func (s *SQLStore) CreateTicket(ctx context.Context, t Ticket) (Ticket, error) {
	t.Subject = strings.TrimSpace(t.Subject)
	switch {
	case t.UserID == "":
		return Ticket{}, errors.New("create ticket: user id is required")
	case t.Subject == "":
		return Ticket{}, errors.New("create ticket: subject is required")
	case !ValidTicketStatus(t.Status):
		return Ticket{}, fmt.Errorf("create ticket: unknown status %q", t.Status)
	case !ValidTicketPriority(t.Priority):
		return Ticket{}, fmt.Errorf("create ticket: unknown priority %q", t.Priority)
	}
	if t.ID == "" {
		t.ID = NewID("tkt")
	}
	meta, err := encodeJSON(t.Metadata)
	if err != nil {
		return Ticket{}, fmt.Errorf("create ticket: %w", err)
	}
	now := s.now()
	if !t.CreatedAt.IsZero() {
		now = t.CreatedAt.UnixMilli()
	}
	t.CreatedAt, t.UpdatedAt = time.UnixMilli(now), time.UnixMilli(now)
	closed := int64(0)
	if t.Status == TicketClosed {
		closed = now
	}
	t.ClosedAt = timeOrZero(closed)
	// The number is taken inside the insert, so two writers cannot take the same one; on
	// PostgreSQL a concurrent insert can still collide on the unique index: try again.
	const attempts = 5
	for attempt := 1; ; attempt++ {
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, s.dialect.rebind(`INSERT INTO tickets (id, number, user_id, agent_id, session_id, subject, description, status, priority, reason,
				first_response_due_at, resolution_due_at, created_at, updated_at, closed_at, metadata)
				SELECT ?, COALESCE(MAX(number), ?) + 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM tickets`),
				t.ID, firstTicketNumber, t.UserID, t.AgentID, t.SessionID, t.Subject, t.Description, t.Status, t.Priority, t.Reason,
				msOrZero(t.FirstResponseDue), msOrZero(t.ResolutionDue), now, now, closed, meta); err != nil {
				return err
			}
			return tx.QueryRowContext(ctx, s.dialect.rebind(`SELECT number FROM tickets WHERE id = ?`), t.ID).Scan(&t.Number)
		})
		if err == nil || attempt == attempts || !isNumberConflict(err) {
			break
		}
	}
	if err != nil {
		return Ticket{}, fmt.Errorf("create ticket: %w", err)
	}
	return t, nil
}

// isNumberConflict spots a clash on the ticket number's unique index in the messages of
// SQLite ("UNIQUE constraint failed: tickets.number") and PostgreSQL ("duplicate key value
// violates unique constraint "tickets_number"").
func isNumberConflict(err error) bool {
	msg := strings.ToLower(err.Error())
	return (strings.Contains(msg, "unique") || strings.Contains(msg, "duplicate key")) &&
		(strings.Contains(msg, "tickets.number") || strings.Contains(msg, "tickets_number"))
}

const ticketColumns = `id, number, user_id, agent_id, session_id, subject, description, status, priority, reason,
	first_response_due_at, resolution_due_at, created_at, updated_at, closed_at, metadata`

func scanTicket(scan func(...any) error) (Ticket, error) {
	var t Ticket
	var firstDue, resolutionDue, created, updated, closed int64
	var meta string
	if err := scan(&t.ID, &t.Number, &t.UserID, &t.AgentID, &t.SessionID, &t.Subject, &t.Description, &t.Status, &t.Priority, &t.Reason,
		&firstDue, &resolutionDue, &created, &updated, &closed, &meta); err != nil {
		return Ticket{}, err
	}
	t.FirstResponseDue, t.ResolutionDue = timeOrZero(firstDue), timeOrZero(resolutionDue)
	t.CreatedAt, t.UpdatedAt, t.ClosedAt = time.UnixMilli(created), time.UnixMilli(updated), timeOrZero(closed)
	var err error
	if t.Metadata, err = decodeJSON(meta); err != nil {
		return Ticket{}, err
	}
	return t, nil
}

// GetTicket returns the user's ticket by id, else ErrNotFound (also for another user's).
func (s *SQLStore) GetTicket(ctx context.Context, userID, ticketID string) (Ticket, error) {
	return s.getTicket(ctx, `id = ?`, ticketID, userID)
}

// GetTicketByNumber returns the user's ticket by number, else ErrNotFound (also for another
// user's).
func (s *SQLStore) GetTicketByNumber(ctx context.Context, userID string, number int64) (Ticket, error) {
	return s.getTicket(ctx, `number = ?`, number, userID)
}

func (s *SQLStore) getTicket(ctx context.Context, where string, key any, userID string) (Ticket, error) {
	row := s.db.QueryRowContext(ctx, s.dialect.rebind(`SELECT `+ticketColumns+` FROM tickets WHERE `+where+` AND user_id = ?`), key, userID)
	t, err := scanTicket(row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return Ticket{}, ErrNotFound
	}
	if err != nil {
		return Ticket{}, fmt.Errorf("get ticket: %w", err)
	}
	return t, nil
}

// TicketFilter narrows ListTickets.
type TicketFilter struct {
	// Status keeps tickets in this status. Default: any.
	Status string
	// SessionID keeps tickets opened in this session. Default: any.
	SessionID string
	// Limit bounds the list. Default 50, at most 500.
	Limit int
}

// ListTickets returns the user's tickets, newest first.
func (s *SQLStore) ListTickets(ctx context.Context, userID string, f TicketFilter) ([]Ticket, error) {
	if f.Status != "" && !ValidTicketStatus(f.Status) {
		return nil, fmt.Errorf("list tickets: unknown status %q", f.Status)
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	f.Limit = min(f.Limit, 500)
	query := `SELECT ` + ticketColumns + ` FROM tickets WHERE user_id = ?`
	args := []any{userID}
	if f.Status != "" {
		query += ` AND status = ?`
		args = append(args, f.Status)
	}
	if f.SessionID != "" {
		query += ` AND session_id = ?`
		args = append(args, f.SessionID)
	}
	query += ` ORDER BY created_at DESC, number DESC LIMIT ?`
	args = append(args, f.Limit)
	rows, err := s.db.QueryContext(ctx, s.dialect.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list tickets: %w", err)
	}
	defer rows.Close()
	var out []Ticket
	for rows.Next() {
		t, err := scanTicket(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("list tickets: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tickets: %w", err)
	}
	return out, nil
}

// UpdateTicketStatus moves the user's ticket to status and returns it; ErrNotFound for a
// ticket that is not theirs. Closing stamps ClosedAt; reopening clears it.
func (s *SQLStore) UpdateTicketStatus(ctx context.Context, userID, ticketID, status string) (Ticket, error) {
	if !ValidTicketStatus(status) {
		return Ticket{}, fmt.Errorf("update ticket: unknown status %q", status)
	}
	now := s.now()
	closed := int64(0)
	if status == TicketClosed {
		closed = now
	}
	res, err := s.db.ExecContext(ctx, s.dialect.rebind(`UPDATE tickets SET status = ?, updated_at = ?,
		closed_at = CASE WHEN CAST(? AS BIGINT) = 0 THEN 0 WHEN status = ? THEN closed_at ELSE ? END
		WHERE id = ? AND user_id = ?`), status, now, closed, TicketClosed, closed, ticketID, userID)
	if err != nil {
		return Ticket{}, fmt.Errorf("update ticket: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return Ticket{}, fmt.Errorf("update ticket: %w", err)
	} else if n == 0 {
		return Ticket{}, ErrNotFound
	}
	return s.GetTicket(ctx, userID, ticketID)
}
