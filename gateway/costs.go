package gateway

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// costs reports spending today and this month, by agent, provider and day, with the budgets.
func (s *Server) costs(c echo.Context) error {
	report, err := s.cfg.Engine.CostReport(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, report)
}
