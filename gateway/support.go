package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/rag"
	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/labstack/echo/v4"
)

// The support agent's data over REST. Tickets belong to the user the support agent opened
// them for: GET /api/v2/tickets, GET and PATCH /api/v2/tickets/:id act for the caller only
// (callerUser), and another user's ticket is 404, exactly like a missing one. Knowledge-base
// documents are shared by every user: anyone may list them, only the admin may ingest or
// delete one (requireAdmin).

// TicketStore keeps support tickets per user; session.SQLStore implements it.
type TicketStore interface {
	GetTicket(ctx context.Context, userID, ticketID string) (session.Ticket, error)
	ListTickets(ctx context.Context, userID string, f session.TicketFilter) ([]session.Ticket, error)
	UpdateTicketStatus(ctx context.Context, userID, ticketID, status string) (session.Ticket, error)
}

var _ TicketStore = (*session.SQLStore)(nil)

// KnowledgeBase ingests, lists and deletes the documents the agents answer from;
// *rag.Index implements it (the same index the support and fam agents search).
type KnowledgeBase interface {
	Ingest(ctx context.Context, kb string, doc rag.Document) (rag.IngestResult, error)
	Documents(ctx context.Context, kb string) ([]session.KBDocument, error)
	Delete(ctx context.Context, kb, name string) error
}

var _ KnowledgeBase = (*rag.Index)(nil)

// supportRoutes registers /api/v2/tickets and /api/v2/kb/documents on v2.
func (s *Server) supportRoutes(v2 *echo.Group) {
	v2.GET("/tickets", s.listTickets)
	v2.GET("/tickets/:id", s.getTicket)
	v2.PATCH("/tickets/:id", s.updateTicket)
	v2.GET("/kb/documents", s.listKBDocuments)
	v2.POST("/kb/documents", s.ingestKBDocument, s.requireAdmin)
	v2.DELETE("/kb/documents/:name", s.deleteKBDocument, s.requireAdmin)
}

// ticketView is a ticket as JSON.
type ticketView struct {
	ID               string         `json:"id"`
	Ref              string         `json:"ref"`
	Number           int64          `json:"number"`
	UserID           string         `json:"userId"`
	AgentID          string         `json:"agentId,omitempty"`
	SessionID        string         `json:"sessionId,omitempty"`
	Subject          string         `json:"subject"`
	Description      string         `json:"description,omitempty"`
	Status           string         `json:"status"`
	Priority         string         `json:"priority"`
	Reason           string         `json:"reason,omitempty"`
	FirstResponseDue *time.Time     `json:"firstResponseDue,omitempty"`
	ResolutionDue    *time.Time     `json:"resolutionDue,omitempty"`
	CreatedAt        time.Time      `json:"createdAt"`
	UpdatedAt        time.Time      `json:"updatedAt"`
	ClosedAt         *time.Time     `json:"closedAt,omitempty"`
	Metadata         map[string]any `json:"metadata,omitempty"`
}

func viewTicket(t session.Ticket) ticketView {
	return ticketView{
		ID: t.ID, Ref: t.Ref(), Number: t.Number, UserID: t.UserID, AgentID: t.AgentID, SessionID: t.SessionID,
		Subject: t.Subject, Description: t.Description, Status: t.Status, Priority: t.Priority, Reason: t.Reason,
		FirstResponseDue: optionalTime(t.FirstResponseDue), ResolutionDue: optionalTime(t.ResolutionDue),
		CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC(), ClosedAt: optionalTime(t.ClosedAt), Metadata: t.Metadata,
	}
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// ticketCaller resolves the store and the user a ticket request acts for.
func (s *Server) ticketCaller(c echo.Context, bodyUser string) (TicketStore, string, error) {
	if s.cfg.Tickets == nil {
		return nil, "", newAPIError(http.StatusServiceUnavailable, CodeUnavailable, "support tickets are not configured on this server")
	}
	requested := bodyUser
	if requested == "" {
		requested = c.QueryParam("userId")
	}
	user, err := s.callerUser(c, requested)
	if err != nil {
		return nil, "", err
	}
	user = strings.TrimSpace(user)
	switch {
	case user == "" || user == session.AnonymousUserID:
		return nil, "", &APIError{Status: http.StatusBadRequest, Code: CodeValidation, Message: "userId: is required: tickets belong to a user", Details: map[string]any{"field": "userId"}}
	case !agents.ValidUserID(user):
		return nil, "", &APIError{Status: http.StatusBadRequest, Code: CodeValidation, Message: "userId: must be 1-128 letters, digits or _.@:-", Details: map[string]any{"field": "userId"}}
	}
	return s.cfg.Tickets, user, nil
}

// ticketError turns the store's refusals into the envelope: a missing (or another user's)
// ticket is 404.
func ticketError(err error) error {
	if errors.Is(err, session.ErrNotFound) {
		return &APIError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "ticket not found", cause: err}
	}
	return fmt.Errorf("tickets: %w", err)
}

// listTickets serves GET /api/v2/tickets?status=&sessionId=&limit=: the caller's tickets,
// newest first.
func (s *Server) listTickets(c echo.Context) error {
	st, user, err := s.ticketCaller(c, "")
	if err != nil {
		return err
	}
	q := &queryParams{c: c}
	f := session.TicketFilter{Status: q.str("status"), SessionID: q.str("sessionId"), Limit: q.limit()}
	if f.Status != "" && !session.ValidTicketStatus(f.Status) {
		q.fail("status", "must be one of open, pending, escalated, closed")
	}
	if err := q.err(); err != nil {
		return err
	}
	list, err := st.ListTickets(c.Request().Context(), user, f)
	if err != nil {
		return ticketError(err)
	}
	views := make([]ticketView, 0, len(list))
	for _, t := range list {
		views = append(views, viewTicket(t))
	}
	return c.JSON(http.StatusOK, map[string]any{"tickets": views, "total": len(views)})
}

// getTicket serves GET /api/v2/tickets/:id.
func (s *Server) getTicket(c echo.Context) error {
	st, user, err := s.ticketCaller(c, "")
	if err != nil {
		return err
	}
	t, err := st.GetTicket(c.Request().Context(), user, c.Param("id"))
	if err != nil {
		return ticketError(err)
	}
	return c.JSON(http.StatusOK, viewTicket(t))
}

// ticketPatch is the body of PATCH /api/v2/tickets/:id.
type ticketPatch struct {
	// UserID names the user in open mode; in keys mode it may only be the caller's own.
	UserID string `json:"userId"`
	Status string `json:"status"`
}

// updateTicket serves PATCH /api/v2/tickets/:id {status}.
func (s *Server) updateTicket(c echo.Context) error {
	var body ticketPatch
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	st, user, err := s.ticketCaller(c, body.UserID)
	if err != nil {
		return err
	}
	body.Status = strings.TrimSpace(body.Status)
	if !session.ValidTicketStatus(body.Status) {
		return &APIError{Status: http.StatusBadRequest, Code: CodeValidation, Message: "status: must be one of open, pending, escalated, closed", Details: map[string]any{"field": "status"}}
	}
	t, err := st.UpdateTicketStatus(c.Request().Context(), user, c.Param("id"), body.Status)
	if err != nil {
		return ticketError(err)
	}
	return c.JSON(http.StatusOK, viewTicket(t))
}

// kbDocumentView is a knowledge-base document as JSON.
type kbDocumentView struct {
	KB        string    `json:"kb"`
	Name      string    `json:"name"`
	Title     string    `json:"title,omitempty"`
	Chunks    int       `json:"chunks"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// knowledgeBase resolves the index and the knowledge base (?kb=, default rag.DefaultKB) a
// request names.
func (s *Server) knowledgeBase(c echo.Context) (KnowledgeBase, string, error) {
	if s.cfg.KnowledgeBase == nil {
		return nil, "", newAPIError(http.StatusServiceUnavailable, CodeUnavailable, "the knowledge base is not configured on this server")
	}
	kb := strings.TrimSpace(c.QueryParam("kb"))
	if kb == "" {
		kb = rag.DefaultKB
	}
	if !rag.ValidKB(kb) {
		return nil, "", &APIError{Status: http.StatusBadRequest, Code: CodeValidation, Message: "kb: must be 1-64 letters, digits or _.- not starting with punctuation", Details: map[string]any{"field": "kb"}}
	}
	return s.cfg.KnowledgeBase, kb, nil
}

// listKBDocuments serves GET /api/v2/kb/documents?kb=.
func (s *Server) listKBDocuments(c echo.Context) error {
	index, kb, err := s.knowledgeBase(c)
	if err != nil {
		return err
	}
	docs, err := index.Documents(c.Request().Context(), kb)
	if err != nil {
		return fmt.Errorf("kb documents: %w", err)
	}
	views := make([]kbDocumentView, 0, len(docs))
	for _, d := range docs {
		views = append(views, kbDocumentView{KB: d.KB, Name: d.Name, Title: d.Title, Chunks: d.Chunks, CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC()})
	}
	return c.JSON(http.StatusOK, map[string]any{"documents": views, "total": len(views)})
}

// kbDocumentInput is the body of POST /api/v2/kb/documents.
type kbDocumentInput struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

// ingestKBDocument serves POST /api/v2/kb/documents?kb= {name, content}: 201 when the
// content was (re)indexed, 200 when the same content was already there.
func (s *Server) ingestKBDocument(c echo.Context) error {
	var body kbDocumentInput
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	index, kb, err := s.knowledgeBase(c)
	if err != nil {
		return err
	}
	body.Name = strings.TrimSpace(body.Name)
	field := func(name, msg string) error {
		return &APIError{Status: http.StatusBadRequest, Code: CodeValidation, Message: name + ": " + msg, Details: map[string]any{"field": name}}
	}
	switch {
	case body.Name == "" || len(body.Name) > 512 || !utf8.ValidString(body.Name):
		return field("name", "is required: 1-512 characters, such as returns.md")
	case strings.TrimSpace(body.Content) == "":
		return field("content", "is required: the document's Markdown or plain text")
	}
	res, err := index.Ingest(c.Request().Context(), kb, rag.Document{Name: body.Name, Content: body.Content})
	if err != nil {
		return fmt.Errorf("kb ingest: %w", err)
	}
	status := http.StatusCreated
	if res.Unchanged {
		status = http.StatusOK
	}
	return c.JSON(status, map[string]any{"kb": kb, "name": res.Doc, "chunks": res.Chunks, "embedded": res.Embedded, "unchanged": res.Unchanged})
}

// deleteKBDocument serves DELETE /api/v2/kb/documents/:name?kb=; a name with folders
// ("billing/invoices.md") is sent with its slashes escaped (billing%2Finvoices.md).
func (s *Server) deleteKBDocument(c echo.Context) error {
	index, kb, err := s.knowledgeBase(c)
	if err != nil {
		return err
	}
	name, err := url.PathUnescape(c.Param("name"))
	if err != nil {
		return &APIError{Status: http.StatusBadRequest, Code: CodeValidation, Message: "name: bad escaping in the path", Details: map[string]any{"field": "name"}}
	}
	if err := index.Delete(c.Request().Context(), kb, name); err != nil {
		if errors.Is(err, session.ErrNotFound) {
			return &APIError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "document not found", cause: err}
		}
		return fmt.Errorf("kb delete: %w", err)
	}
	return c.NoContent(http.StatusNoContent)
}
