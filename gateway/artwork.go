package gateway

import (
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/dartmouth-gw/dartmouth/agents/artwork"
	"github.com/labstack/echo/v4"
)

// POST /api/v2/artwork/analyze reads an uploaded image's header (PNG, JPEG or WebP; no pixel
// is decoded) and answers what the artwork agent would compute: the DPI at a print width,
// the largest print at a DPI, and the quality band, in cm first then inches. The image comes
// as a multipart "image" part (with optional widthCm and dpi fields) or as the raw body
// (with widthCm and dpi in the query). The body is bounded by AudioBodyLimit, as uploads are.

// Defaults and bounds of the analysis.
const (
	// artworkDefaultDPI is the resolution the maximum print size is given at when none is
	// asked for: the top of the Optimal band most print shops ask for.
	artworkDefaultDPI = 300
	artworkMaxDPI     = 10000
	// artworkMaxWidthCM is 100 m: wider is a typo, not a print.
	artworkMaxWidthCM = 10000
)

// artworkAnalysis is the response of POST /api/v2/artwork/analyze.
type artworkAnalysis struct {
	Format      string  `json:"format"`
	WidthPx     int     `json:"widthPx"`
	HeightPx    int     `json:"heightPx"`
	AspectRatio string  `json:"aspectRatio"`
	HasAlpha    bool    `json:"hasAlpha"`
	Animated    bool    `json:"animated,omitempty"`
	DeclaredDPI float64 `json:"declaredDpi,omitempty"`
	// Print is the print at the asked width (widthCm), with the height from the aspect ratio.
	Print *artworkPrint `json:"print,omitempty"`
	// MaxPrint is the largest print at the asked DPI (default 300).
	MaxPrint artworkPrint `json:"maxPrint"`
	// Context is what to send as context.artwork in a chat request, so the artwork agent
	// talks about this image.
	Context map[string]any `json:"context"`
}

// artworkPrint is one print size: cm to 1 decimal, inches to 2.
type artworkPrint struct {
	WidthCM  float64 `json:"widthCm"`
	HeightCM float64 `json:"heightCm"`
	WidthIn  float64 `json:"widthIn"`
	HeightIn float64 `json:"heightIn"`
	DPI      int     `json:"dpi"`
	Quality  string  `json:"quality"`
}

func printOf(m artwork.MaxPrint) artworkPrint {
	return artworkPrint{
		WidthCM: round(m.WidthCM, 1), HeightCM: round(m.HeightCM, 1), WidthIn: round(m.WidthIn, 2), HeightIn: round(m.HeightIn, 2),
		DPI: int(math.Round(m.DPI)), Quality: string(m.Band),
	}
}

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

// artworkUpload is what an analyze request carries.
type artworkUpload struct {
	info     artwork.ImageInfo
	fileName string
	// found is set once an image was read.
	found        bool
	widthCM, dpi string
}

func (s *Server) analyzeArtwork(c echo.Context) error {
	up, err := readArtworkUpload(c)
	if err != nil {
		return err
	}
	widthCM, err := positiveField("widthCm", up.widthCM, artworkMaxWidthCM)
	if err != nil {
		return err
	}
	dpi, err := positiveField("dpi", up.dpi, artworkMaxDPI)
	if err != nil {
		return err
	}
	if dpi == 0 {
		dpi = artworkDefaultDPI
	}
	info := up.info
	px := info.Pixels()
	out := artworkAnalysis{
		Format: info.Format, WidthPx: info.Width, HeightPx: info.Height, AspectRatio: px.Ratio(),
		HasAlpha: info.HasAlpha, Animated: info.Animated, DeclaredDPI: info.DPIX,
		MaxPrint: printOf(artwork.MaxPrintAt(px, dpi)),
		Context:  info.ContextValue(up.fileName),
	}
	if widthCM > 0 {
		// DPI = round(px_w / (width_cm / 2.54)); the height follows the aspect ratio.
		at := artwork.DPIAtCM(info.Width, widthCM)
		p := artwork.MaxPrintAt(px, float64(at))
		p.DPI = float64(at)
		// The asked width exactly, not the width the rounded DPI gives back.
		p.WidthCM, p.WidthIn = widthCM, widthCM/2.54
		p.HeightCM = widthCM * float64(info.Height) / float64(info.Width)
		p.HeightIn = p.HeightCM / 2.54
		pr := printOf(p)
		out.Print = &pr
	}
	return c.JSON(http.StatusOK, out)
}

// positiveField parses an optional number in (0, limit]; "" is 0.
func positiveField(name, v string, limit float64) (float64, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f <= 0 || f > limit {
		return 0, &APIError{Status: http.StatusBadRequest, Code: CodeValidation, Message: fmt.Sprintf("%s: must be a number above 0 and at most %v", name, limit), Details: map[string]any{"field": name}}
	}
	return f, nil
}

// readArtworkUpload reads the image's header from a multipart "image" part or the raw body,
// streaming: only the header is parsed, the rest is read past to enforce the body limit.
func readArtworkUpload(c echo.Context) (*artworkUpload, error) {
	req := c.Request()
	up := &artworkUpload{}
	mediaType, _, _ := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if mediaType != "multipart/form-data" {
		up.widthCM, up.dpi = c.QueryParam("widthCm"), c.QueryParam("dpi")
		if err := up.readImage(req.Body, ""); err != nil {
			return nil, err
		}
		return up, nil
	}
	mr, err := req.MultipartReader()
	if err != nil {
		return nil, newAPIError(http.StatusBadRequest, CodeValidation, "malformed multipart body: %v", err)
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, multipartError(err)
		}
		switch part.FormName() {
		case "image":
			if up.found {
				return nil, &APIError{Status: http.StatusBadRequest, Code: CodeValidation, Message: "image: send one image per request", Details: map[string]any{"field": "image"}}
			}
			if err := up.readImage(part, part.FileName()); err != nil {
				return nil, err
			}
		case "widthCm", "dpi":
			v, err := io.ReadAll(io.LimitReader(part, 64))
			if err != nil {
				return nil, multipartError(err)
			}
			if part.FormName() == "dpi" {
				up.dpi = string(v)
			} else {
				up.widthCM = string(v)
			}
		}
		if _, err := io.Copy(io.Discard, part); err != nil {
			return nil, multipartError(err)
		}
	}
	if !up.found {
		return nil, &APIError{Status: http.StatusBadRequest, Code: CodeValidation, Message: `image: is required: send the image as a multipart "image" part or as the body`, Details: map[string]any{"field": "image"}}
	}
	return up, nil
}

// readImage reads the header of an image from r, then reads r to its end so an over-limit
// body is refused whole.
func (up *artworkUpload) readImage(r io.Reader, fileName string) error {
	info, err := artwork.ReadImageInfo(r)
	if err != nil {
		var maxBytes *http.MaxBytesError
		switch {
		case errors.As(err, &maxBytes):
			return err
		case errors.Is(err, artwork.ErrUnknownFormat):
			return &APIError{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMediaType, Message: "the image is not a PNG, JPEG or WebP file", Details: map[string]any{"field": "image"}, cause: err}
		case errors.Is(err, artwork.ErrTruncated) || errors.Is(err, artwork.ErrCorrupt) || errors.Is(err, artwork.ErrHeaderTooLarge):
			return &APIError{Status: http.StatusBadRequest, Code: CodeValidation, Message: "image: " + err.Error(), Details: map[string]any{"field": "image"}, cause: err}
		}
		return fmt.Errorf("read image: %w", err)
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("read image: %w", err)
	}
	up.info, up.fileName, up.found = info, fileName, true
	return nil
}

// multipartError keeps an over-limit body a 413 and makes any other multipart failure a 400.
func multipartError(err error) error {
	var maxBytes *http.MaxBytesError
	if errors.As(err, &maxBytes) {
		return err
	}
	return newAPIError(http.StatusBadRequest, CodeValidation, "malformed multipart body: %v", err)
}
