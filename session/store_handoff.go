package session

import (
	"context"
	"fmt"
)

// UpdateSessionAgent hands the user's session to another agent: later turns of the session
// are answered by agentID, with the same history. ErrNotFound when the session is not theirs.
func (s *SQLStore) UpdateSessionAgent(ctx context.Context, userID, sessionID, agentID string) error {
	if agentID == "" {
		return fmt.Errorf("update session agent: agent id is required")
	}
	res, err := s.db.ExecContext(ctx, s.dialect.rebind(`UPDATE sessions SET agent_id = ?, updated_at = ? WHERE id = ? AND user_id = ?`),
		agentID, s.now(), sessionID, userID)
	if err != nil {
		return fmt.Errorf("update session agent: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("update session agent: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}
