package gateway_test

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"testing"

	"github.com/dartmouth-gw/dartmouth/gateway"
)

// pngOf encodes a w×h PNG; noisy pixels make it large (they do not compress).
func pngOf(t *testing.T, w, h int, noisy bool) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(1, 2))
	for i := range img.Pix {
		if noisy {
			img.Pix[i] = byte(r.IntN(256))
		} else {
			img.Pix[i] = 200
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegOf(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	img.Set(0, 0, color.White)
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// multipartImage builds a form with an "image" part and fields.
func multipartImage(t *testing.T, data []byte, fields map[string]string) (body *bytes.Buffer, contentType string) {
	t.Helper()
	body = &bytes.Buffer{}
	w := multipart.NewWriter(body)
	for k, v := range fields {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if data != nil {
		part, err := w.CreateFormFile("image", "art.png")
		if err != nil {
			t.Fatal(err)
		}
		part.Write(data)
	}
	w.Close()
	return body, w.FormDataContentType()
}

func analyze(t *testing.T, url, contentType string, body []byte) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := jsonDecode(resp.Body, &out); err != nil {
		t.Fatalf("not JSON (%d): %v", resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

// The formulas: DPI = round(px_w / (width_cm / 2.54)); size_in = px / dpi; size_cm =
// size_in * 2.54; cm to 1 decimal, inches to 2; Optimal >= 250, Good 200-249, Poor < 200.
func TestArtworkAnalyzeComputesPrintSizes(t *testing.T) {
	g := startGateway(t, nil)
	url := g.URL + "/api/v2/artwork/analyze"
	art := pngOf(t, 600, 400, false)

	form, ct := multipartImage(t, art, map[string]string{"widthCm": "5.08"})
	status, out := analyze(t, url, ct, form.Bytes())
	if status != http.StatusOK {
		t.Fatalf("%d %v", status, out)
	}
	if out["format"] != "png" || out["widthPx"] != float64(600) || out["heightPx"] != float64(400) || out["aspectRatio"] != "3:2" {
		t.Fatalf("image facts: %v", out)
	}
	wantPrint := map[string]any{"widthCm": 5.1, "heightCm": 3.4, "widthIn": 2.0, "heightIn": 1.33, "dpi": float64(300), "quality": "Optimal"}
	for k, v := range wantPrint {
		if got := out["print"].(map[string]any)[k]; got != v {
			t.Errorf("print.%s = %v, want %v", k, got, v)
		}
	}
	// The default maximum print is at 300 DPI: 600 px = 2 in = 5.08 cm -> 5.1 cm.
	wantMax := map[string]any{"widthCm": 5.1, "heightCm": 3.4, "widthIn": 2.0, "heightIn": 1.33, "dpi": float64(300), "quality": "Optimal"}
	for k, v := range wantMax {
		if got := out["maxPrint"].(map[string]any)[k]; got != v {
			t.Errorf("maxPrint.%s = %v, want %v", k, got, v)
		}
	}
	if ctx := out["context"].(map[string]any); ctx["widthPx"] != float64(600) || ctx["fileName"] != "art.png" {
		t.Errorf("chat context %v", ctx)
	}

	tests := []struct {
		name, query string
		body        []byte
		ct          string
		field       string
		want        any
	}{
		// 600 px over 7.62 cm (3 in) is 200 DPI: Good.
		{"good band", "?widthCm=7.62", art, "image/png", "print.quality", "Good"},
		// 600 px over 10 cm: round(600 / 3.937) = 152 DPI: Poor.
		{"poor band", "?widthCm=10", art, "image/png", "print.dpi", float64(152)},
		{"max at 150 dpi", "?dpi=150", art, "application/octet-stream", "maxPrint.widthCm", 10.2},
		{"jpeg", "?dpi=100", jpegOf(t, 320, 240), "image/jpeg", "maxPrint.widthIn", 3.2},
	}
	for _, tt := range tests {
		status, out := analyze(t, url+tt.query, tt.ct, tt.body)
		if status != http.StatusOK {
			t.Fatalf("%s: %d %v", tt.name, status, out)
		}
		var obj, key string
		for i := range tt.field {
			if tt.field[i] == '.' {
				obj, key = tt.field[:i], tt.field[i+1:]
			}
		}
		if got := out[obj].(map[string]any)[key]; got != tt.want {
			t.Errorf("%s: %s = %v, want %v", tt.name, tt.field, got, tt.want)
		}
	}
	if _, out := analyze(t, url, "image/png", art); out["print"] != nil {
		t.Errorf("no width asked, yet a print: %v", out["print"])
	}
}

func TestArtworkAnalyzeRefusesBadUploads(t *testing.T) {
	g := startGateway(t, nil, func(c *gateway.Config) { c.AudioBodyLimit = 16 << 10 })
	url := g.URL + "/api/v2/artwork/analyze"
	art := pngOf(t, 60, 40, false)
	corrupt := append([]byte{}, art[:16]...) // the signature and the start of IHDR, then nothing
	noField, noFieldCT := multipartImage(t, nil, map[string]string{"widthCm": "10"})
	badWidth, badWidthCT := multipartImage(t, art, map[string]string{"widthCm": "-3"})
	huge := pngOf(t, 200, 200, true)
	if len(huge) <= 16<<10 {
		t.Fatalf("the big image is only %d bytes", len(huge))
	}
	tests := []struct {
		name   string
		url    string
		ct     string
		body   []byte
		status int
		code   string
	}{
		{"gif", url, "image/gif", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), 415, gateway.CodeUnsupportedMediaType},
		{"text", url, "text/plain", []byte("hello, this is not an image"), 415, gateway.CodeUnsupportedMediaType},
		{"corrupt png", url, "image/png", corrupt, 400, gateway.CodeValidation},
		{"empty body", url, "image/png", nil, 400, gateway.CodeValidation},
		{"no image part", url, noFieldCT, noField.Bytes(), 400, gateway.CodeValidation},
		{"negative width", url, badWidthCT, badWidth.Bytes(), 400, gateway.CodeValidation},
		{"absurd dpi", url + "?dpi=99999", "image/png", art, 400, gateway.CodeValidation},
		{"not a number", url + "?widthCm=wide", "image/png", art, 400, gateway.CodeValidation},
		{"over the limit", url, "image/png", huge, 413, gateway.CodeBodyTooLarge},
	}
	for _, tt := range tests {
		status, out := analyze(t, tt.url, tt.ct, tt.body)
		if status != tt.status || errCode(out) != tt.code {
			t.Errorf("%s: %d %v, want %d %s", tt.name, status, out, tt.status, tt.code)
		}
	}
	// A body over the limit without a Content-Length (chunked) is refused too.
	resp, err := http.Post(url, "image/png", struct{ *bytes.Reader }{bytes.NewReader(huge)})
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	jsonDecode(resp.Body, &out)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || errCode(out) != gateway.CodeBodyTooLarge {
		t.Errorf("chunked over the limit: %d %v", resp.StatusCode, out)
	}
}
