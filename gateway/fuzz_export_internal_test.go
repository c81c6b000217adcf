package gateway

import "context"

// WaitSocketsDone blocks until every WebSocket handler the server started has returned (its
// turns and voice goroutines with it), or ctx ends. The socket fuzz targets call it between
// inputs, so one input's teardown is not counted as the next one's coverage. No socket may be
// opened while it waits.
func (s *Server) WaitSocketsDone(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.sockets.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
