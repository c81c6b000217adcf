package gateway

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// The web pages (Config.Static, normally web.FS()): the demo page at "/", the dashboard at
// "/dashboard", the API reference at "/docs", the embeddable widget at "/widget.js" and the
// OpenAPI description at "/openapi.json", plus any other file by its path.
//
// Caching. Every file has a strong ETag (a hash of its bytes), and a request whose
// If-None-Match names it gets 304 with no body. What a cache may do without asking depends on
// whether the URL can change when the file does:
//   - A URL that names the file's version, "?v=<ETag without quotes>", can be cached for a year
//     without revalidation ("public, max-age=31536000, immutable"): a new release has a new
//     hash and so a new URL. A stale ?v= (the file changed since) gets the current bytes with
//     no-cache, so an old URL can never pin new bytes for a year.
//   - widget.js and the other assets have stable URLs pasted into other people's sites, so a
//     year there would keep visitors on an old widget long after an upgrade. They get one
//     hour ("public, max-age=3600"), then a cheap revalidation (304) by ETag.
//   - HTML pages are revalidated on every load ("no-cache"): a page and the scripts it loads
//     must agree, and the 304 costs one round trip.
//
// Compressible files (text, JavaScript, JSON, SVG) are gzipped once at start-up and sent
// gzipped to clients that accept it (Vary: Accept-Encoding); the two encodings have distinct
// ETags ("<hash>" and "<hash>-gz"), and either one revalidates.

// Cache-Control values of the static files.
const (
	cacheImmutable = "public, max-age=31536000, immutable"
	cacheAsset     = "public, max-age=3600"
	cachePage      = "no-cache"
)

// staticFile is one file of the site, read and hashed once.
type staticFile struct {
	body        []byte
	gzipped     []byte // nil when gzip would not help
	hash        string // hex, the ETag without quotes; also the ?v= of versioned URLs
	contentType string
	page        bool // HTML: revalidated on every load
}

// staticSite is the site's files by path ("widget.js", "docs.html").
type staticSite struct {
	files map[string]*staticFile
}

// loadStaticSite reads every file of fsys. The embedded site is a few hundred KiB, so holding it
// in memory (with its gzipped copies) costs little and saves work on every request.
func loadStaticSite(fsys fs.FS) (*staticSite, error) {
	site := &staticSite{files: map[string]*staticFile{}}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		f := &staticFile{body: body, hash: hex.EncodeToString(sum[:10]), contentType: contentTypeOf(name, body)}
		f.page = strings.HasPrefix(f.contentType, "text/html")
		if compressible(f.contentType) && len(body) > 512 {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // the level is valid
			_, _ = zw.Write(body)                                    // writes to a bytes.Buffer do not fail
			_ = zw.Close()
			if buf.Len() < len(body) {
				f.gzipped = buf.Bytes()
			}
		}
		site.files[name] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: static files: %w", err)
	}
	return site, nil
}

func contentTypeOf(name string, body []byte) string {
	switch path.Ext(name) {
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".json":
		return "application/json; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
		return ct
	}
	return http.DetectContentType(body)
}

func compressible(contentType string) bool {
	return strings.HasPrefix(contentType, "text/") || strings.HasPrefix(contentType, "application/json") ||
		strings.HasPrefix(contentType, "image/svg")
}

// staticRoutes serves the site: the named pages at their short paths, every other file by its
// path. API paths never reach here (their routes are more specific), except unknown ones under
// /api/ and /v1/, which get the JSON 404 like any missing file.
func (s *Server) staticRoutes(site *staticSite) {
	methods := []string{http.MethodGet, http.MethodHead}
	for route, name := range map[string]string{
		"/":             "index.html",
		"/dashboard":    "dashboard.html",
		"/docs":         "docs.html",
		"/widget.js":    "widget.js",
		"/openapi.json": "openapi.json",
	} {
		s.echo.Match(methods, route, func(c echo.Context) error { return site.serve(c, name) })
	}
	s.echo.Match(methods, "/*", func(c echo.Context) error { return site.serve(c, c.Param("*")) })
}

// serve writes the named file, or 304 when the client's copy is current.
func (site *staticSite) serve(c echo.Context, name string) error {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	f, ok := site.files[name]
	if !ok {
		return newAPIError(http.StatusNotFound, CodeNotFound, "no such page: /%s", name)
	}
	r, h := c.Request(), c.Response().Header()
	body, etag := f.body, `"`+f.hash+`"`
	if f.gzipped != nil {
		h.Add(echo.HeaderVary, echo.HeaderAcceptEncoding)
		if acceptsGzip(r.Header.Get(echo.HeaderAcceptEncoding)) {
			body, etag = f.gzipped, `"`+f.hash+`-gz"`
			h.Set(echo.HeaderContentEncoding, "gzip")
		}
	}
	h.Set("ETag", etag)
	switch v := r.URL.Query().Get("v"); {
	case v != "" && v == f.hash:
		h.Set(echo.HeaderCacheControl, cacheImmutable)
	case v != "" || f.page:
		h.Set(echo.HeaderCacheControl, cachePage)
	default:
		h.Set(echo.HeaderCacheControl, cacheAsset)
	}
	h.Set(echo.HeaderXContentTypeOptions, "nosniff")
	if f.page {
		h.Set("Referrer-Policy", "no-referrer")
	}
	if etagMatches(r.Header.Get("If-None-Match"), f.hash) {
		h.Del(echo.HeaderContentEncoding)
		return c.NoContent(http.StatusNotModified)
	}
	h.Set(echo.HeaderContentType, f.contentType)
	h.Set(echo.HeaderContentLength, strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return c.NoContent(http.StatusOK)
	}
	return c.Blob(http.StatusOK, f.contentType, body)
}

// etagMatches is If-None-Match's weak comparison (RFC 9110 13.1.2) against either encoding's
// ETag of the file.
func etagMatches(header, hash string) bool {
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == "*" || tag == `"`+hash+`"` || tag == `"`+hash+`-gz"` {
			return true
		}
	}
	return false
}

// acceptsGzip reads Accept-Encoding: gzip, unless refused with q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.TrimSpace(coding) != "*" {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
