package gateway

import "github.com/labstack/echo/v4"

// EchoRoutes lists the routes the server registered, for the test that keeps /openapi.json
// complete.
func (s *Server) EchoRoutes() []*echo.Route { return s.echo.Routes() }
