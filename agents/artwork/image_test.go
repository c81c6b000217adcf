package artwork_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"strings"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents/artwork"
)

// Test images. PNG and JPEG files are encoded by the standard library; the resolution
// metadata it does not write (PNG pHYs, JPEG JFIF and EXIF) is spliced in by hand.

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewRGBA(image.Rect(0, 0, w, h)), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pngChunk is a PNG chunk with its length and CRC.
func pngChunk(typ string, data []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	out = append(out, typ...)
	out = append(out, data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(append([]byte(typ), data...)))
}

// withAfterIHDR inserts chunks right after a PNG's IHDR (8-byte signature + 25-byte IHDR).
func withAfterIHDR(file []byte, chunks ...[]byte) []byte {
	out := append([]byte(nil), file[:33]...)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return append(out, file[33:]...)
}

// pHYs declares pixels per metre; 11811 is 300 DPI (299.9994).
func pHYs(ppm uint32) []byte {
	d := binary.BigEndian.AppendUint32(nil, ppm)
	d = binary.BigEndian.AppendUint32(d, ppm)
	return pngChunk("pHYs", append(d, 1))
}

// withAfterSOI inserts JPEG segments right after the start-of-image marker.
func withAfterSOI(file []byte, segments ...[]byte) []byte {
	out := append([]byte(nil), file[:2]...)
	for _, s := range segments {
		out = append(out, s...)
	}
	return append(out, file[2:]...)
}

func jpegSegment(marker byte, data []byte) []byte {
	out := []byte{0xFF, marker}
	out = binary.BigEndian.AppendUint16(out, uint16(len(data)+2))
	return append(out, data...)
}

// jfif is an APP0 JFIF segment: units 1 = dots per inch, 2 = dots per cm.
func jfif(units byte, x, y uint16) []byte {
	d := append([]byte("JFIF\x00"), 1, 2, units)
	d = binary.BigEndian.AppendUint16(d, x)
	d = binary.BigEndian.AppendUint16(d, y)
	return jpegSegment(0xE0, append(d, 0, 0))
}

// exif is an APP1 EXIF segment whose IFD0 holds XResolution, YResolution (RATIONAL) and
// ResolutionUnit (SHORT: 2 inches, 3 cm), in either byte order.
func exif(bo binary.AppendByteOrder, num, den uint32, unit uint16) []byte {
	t := []byte("MM\x00*")
	if bo.String() == binary.LittleEndian.String() {
		t = []byte("II*\x00")
	}
	t = bo.AppendUint32(t, 8) // IFD0 right after the header
	t = bo.AppendUint16(t, 3)
	const ratAt = 8 + 2 + 3*12 + 4
	entry := func(tag, typ uint16, value []byte) {
		t = bo.AppendUint16(t, tag)
		t = bo.AppendUint16(t, typ)
		t = bo.AppendUint32(t, 1)
		t = append(t, value...)
	}
	entry(0x011A, 5, bo.AppendUint32(nil, ratAt))
	entry(0x011B, 5, bo.AppendUint32(nil, ratAt+8))
	entry(0x0128, 3, append(bo.AppendUint16(nil, unit), 0, 0))
	t = bo.AppendUint32(t, 0) // no next IFD
	for range 2 {
		t = bo.AppendUint32(t, num)
		t = bo.AppendUint32(t, den)
	}
	return jpegSegment(0xE1, append([]byte("Exif\x00\x00"), t...))
}

// There is no WebP encoder in the standard library, so WebP files are built by hand from
// the container layout of RFC 9649: "RIFF", the little-endian size of what follows, "WEBP",
// then the first chunk (fourcc, little-endian size, payload, a pad byte when the size is
// odd). Only the chunk headers the reader needs are present: these files hold no pixel data
// and would not decode, which is exactly what a header reader must cope with.
func riffWebP(fourcc string, payload []byte) []byte {
	chunk := append([]byte(fourcc), binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))...)
	chunk = append(chunk, payload...)
	if len(payload)%2 == 1 {
		chunk = append(chunk, 0)
	}
	out := append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(4+len(chunk)))...)
	return append(append(out, "WEBP"...), chunk...)
}

// webpVP8L is a lossless WebP header: signature 0x2F, then 32 bits holding width-1 (14
// bits), height-1 (14 bits), the alpha hint (1 bit) and the version (3 bits, 0).
func webpVP8L(w, h int, alpha bool) []byte {
	bits := uint32(w-1) | uint32(h-1)<<14
	if alpha {
		bits |= 1 << 28
	}
	return riffWebP("VP8L", append([]byte{0x2F}, binary.LittleEndian.AppendUint32(nil, bits)...))
}

// webpVP8X is an extended WebP header: a flags byte (alpha 0x10, animation 0x02), three
// reserved bytes, then the canvas width-1 and height-1 in 24 bits each.
func webpVP8X(w, h int, flags byte) []byte {
	p := []byte{flags, 0, 0, 0}
	p = append(p, byte(w-1), byte((w-1)>>8), byte((w-1)>>16))
	p = append(p, byte(h-1), byte((h-1)>>8), byte((h-1)>>16))
	return riffWebP("VP8X", p)
}

// webpVP8 is a lossy WebP header: a 3-byte frame tag (bit 0 clear: a key frame), the start
// code 9D 01 2A, then 14-bit width and height with 2 scaling bits each.
func webpVP8(w, h int) []byte {
	p := []byte{0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A}
	p = binary.LittleEndian.AppendUint16(p, uint16(w))
	p = binary.LittleEndian.AppendUint16(p, uint16(h))
	return riffWebP("VP8 ", p)
}

func TestReadImageInfo(t *testing.T) {
	rgba := encodePNG(t, image.NewNRGBA(image.Rect(0, 0, 300, 200)))
	gray := encodePNG(t, image.NewGray(image.Rect(0, 0, 31, 17)))
	pal := encodePNG(t, image.NewPaletted(image.Rect(0, 0, 64, 48), color.Palette{color.Black, color.White}))
	jpg := encodeJPEG(t, 120, 80)
	cases := []struct {
		name string
		file []byte
		want artwork.ImageInfo
	}{
		{"png rgba", rgba, artwork.ImageInfo{Format: "png", Width: 300, Height: 200, HasAlpha: true}},
		{"png gray", gray, artwork.ImageInfo{Format: "png", Width: 31, Height: 17}},
		{"png paletted", pal, artwork.ImageInfo{Format: "png", Width: 64, Height: 48}},
		{"png pHYs 300 dpi", withAfterIHDR(gray, pHYs(11811)), artwork.ImageInfo{Format: "png", Width: 31, Height: 17, DPIX: 300, DPIY: 300}},
		{"png pHYs without unit", withAfterIHDR(gray, pngChunk("pHYs", []byte{0, 0, 0, 1, 0, 0, 0, 1, 0})), artwork.ImageInfo{Format: "png", Width: 31, Height: 17}},
		{"png tRNS", withAfterIHDR(gray, pngChunk("tRNS", []byte{0, 0})), artwork.ImageInfo{Format: "png", Width: 31, Height: 17, HasAlpha: true}},
		{"png text chunk first", withAfterIHDR(rgba, pngChunk("tEXt", []byte("Software\x00test")), pHYs(2835)), artwork.ImageInfo{Format: "png", Width: 300, Height: 200, DPIX: 72.01, DPIY: 72.01, HasAlpha: true}},
		{"jpeg", jpg, artwork.ImageInfo{Format: "jpeg", Width: 120, Height: 80}},
		{"jpeg jfif dpi", withAfterSOI(jpg, jfif(1, 300, 300)), artwork.ImageInfo{Format: "jpeg", Width: 120, Height: 80, DPIX: 300, DPIY: 300}},
		{"jpeg jfif dots per cm", withAfterSOI(jpg, jfif(2, 118, 118)), artwork.ImageInfo{Format: "jpeg", Width: 120, Height: 80, DPIX: 299.72, DPIY: 299.72}},
		{"jpeg jfif aspect only", withAfterSOI(jpg, jfif(0, 1, 1)), artwork.ImageInfo{Format: "jpeg", Width: 120, Height: 80}},
		{"jpeg exif big endian", withAfterSOI(jpg, exif(binary.BigEndian, 240, 1, 2)), artwork.ImageInfo{Format: "jpeg", Width: 120, Height: 80, DPIX: 240, DPIY: 240}},
		{"jpeg exif little endian cm", withAfterSOI(jpg, exif(binary.LittleEndian, 1181, 10, 3)), artwork.ImageInfo{Format: "jpeg", Width: 120, Height: 80, DPIX: 299.97, DPIY: 299.97}},
		{"jpeg jfif wins over exif", withAfterSOI(jpg, jfif(1, 300, 300), exif(binary.BigEndian, 72, 1, 2)), artwork.ImageInfo{Format: "jpeg", Width: 120, Height: 80, DPIX: 300, DPIY: 300}},
		{"jpeg fill bytes and stray bytes", append([]byte{0xFF, 0xD8, 0x00, 0x12, 0xFF, 0xFF}, jpg[3:]...), artwork.ImageInfo{Format: "jpeg", Width: 120, Height: 80}},
		{"webp lossless", webpVP8L(640, 480, false), artwork.ImageInfo{Format: "webp", Width: 640, Height: 480}},
		{"webp lossless alpha", webpVP8L(16384, 1, true), artwork.ImageInfo{Format: "webp", Width: 16384, Height: 1, HasAlpha: true}},
		{"webp extended", webpVP8X(5000, 3000, 0x10), artwork.ImageInfo{Format: "webp", Width: 5000, Height: 3000, HasAlpha: true}},
		{"webp extended animated", webpVP8X(16777216, 1, 0x02), artwork.ImageInfo{Format: "webp", Width: 16777216, Height: 1, Animated: true}},
		{"webp lossy", webpVP8(1024, 768), artwork.ImageInfo{Format: "webp", Width: 1024, Height: 768}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := artwork.ReadImageInfo(bytes.NewReader(c.file))
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

// TestReadImageInfoAgreesWithTheStandardLibrary compares sizes with image.DecodeConfig.
func TestReadImageInfoAgreesWithTheStandardLibrary(t *testing.T) {
	for _, size := range [][2]int{{1, 1}, {7, 3}, {256, 255}, {1000, 17}, {17, 1000}} {
		for _, file := range [][]byte{
			encodePNG(t, image.NewRGBA(image.Rect(0, 0, size[0], size[1]))),
			encodeJPEG(t, size[0], size[1]),
		} {
			cfg, format, err := image.DecodeConfig(bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := artwork.ReadImageInfo(bytes.NewReader(file))
			if err != nil || got.Format != format || got.Width != cfg.Width || got.Height != cfg.Height {
				t.Fatalf("%v: got %+v %v, standard library %s %dx%d", size, got, err, format, cfg.Width, cfg.Height)
			}
		}
	}
}

// TestReadImageInfoTruncated cuts valid files short: every cut before the size is known is
// ErrTruncated, never a panic or a wrong size.
func TestReadImageInfoTruncated(t *testing.T) {
	png := withAfterIHDR(encodePNG(t, image.NewGray(image.Rect(0, 0, 31, 17))), pHYs(11811))
	jpg := withAfterSOI(encodeJPEG(t, 120, 80), jfif(1, 300, 300))
	files := []struct {
		name string
		file []byte
		// need is how many bytes the reader must see: up to the first IDAT chunk header, the
		// end of the frame header, or the first chunk's header fields.
		need int
	}{
		{"png", png, bytes.Index(png, []byte("IDAT")) + 4},
		{"jpeg", jpg, bytes.Index(jpg, []byte{0xFF, 0xC0}) + 2 + 2 + 6},
		{"webp lossless", webpVP8L(640, 480, false), 12 + 8 + 5},
		{"webp extended", webpVP8X(640, 480, 0), 12 + 8 + 10},
		{"webp lossy", webpVP8(640, 480), 12 + 8 + 10},
	}
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			for n := 0; n < f.need; n++ {
				info, err := artwork.ReadImageInfo(bytes.NewReader(f.file[:n]))
				if !errors.Is(err, artwork.ErrTruncated) {
					t.Fatalf("cut at %d of %d: got %+v, %v; want ErrTruncated", n, f.need, info, err)
				}
			}
			if _, err := artwork.ReadImageInfo(bytes.NewReader(f.file[:f.need])); err != nil {
				t.Fatalf("the first %d bytes are enough: %v", f.need, err)
			}
		})
	}
}

func TestReadImageInfoRejects(t *testing.T) {
	gray := encodePNG(t, image.NewGray(image.Rect(0, 0, 31, 17)))
	badCRC := append([]byte(nil), gray...)
	badCRC[29] ^= 0xFF // inside IHDR's CRC
	zeroWidth := append(append(append([]byte(nil), gray[:8]...), pngChunk("IHDR", []byte{0, 0, 0, 0, 0, 0, 0, 1, 8, 0, 0, 0, 0})...), pngChunk("IDAT", nil)...)
	cases := []struct {
		name string
		file []byte
		want error
	}{
		{"gif", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), artwork.ErrUnknownFormat},
		{"text", []byte("hello, this is not an image"), artwork.ErrUnknownFormat},
		{"bmp", []byte("BM\x3e\x00\x00\x00\x00\x00\x00\x00\x3e\x00"), artwork.ErrUnknownFormat},
		{"riff wave", []byte("RIFF\x24\x00\x00\x00WAVEfmt "), artwork.ErrUnknownFormat},
		{"png bad crc", badCRC, artwork.ErrCorrupt},
		{"png zero width", zeroWidth, artwork.ErrCorrupt},
		{"png without IHDR", append(append([]byte(nil), gray[:8]...), pngChunk("IDAT", nil)...), artwork.ErrCorrupt},
		{"png without IDAT", append(append([]byte(nil), gray[:33]...), pngChunk("IEND", nil)...), artwork.ErrCorrupt},
		{"png bad chunk type", append(append([]byte(nil), gray[:33]...), 0, 0, 0, 0, '1', '2', '3', '4'), artwork.ErrCorrupt},
		{"jpeg scan before frame", []byte{0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02}, artwork.ErrCorrupt},
		{"jpeg end before frame", []byte{0xFF, 0xD8, 0xFF, 0xD9}, artwork.ErrCorrupt},
		{"jpeg short segment", []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01}, artwork.ErrCorrupt},
		{"jpeg zero height", withAfterSOI([]byte{0xFF, 0xD8}, jpegSegment(0xC0, []byte{8, 0, 0, 0, 8, 1, 1, 0x11, 0})), artwork.ErrCorrupt},
		{"jpeg without markers", append([]byte{0xFF, 0xD8}, bytes.Repeat([]byte("no markers here "), 100)...), artwork.ErrTruncated},
		{"webp unknown chunk", riffWebP("ALPH", []byte{1, 2}), artwork.ErrCorrupt},
		{"webp bad lossless signature", riffWebP("VP8L", []byte{0x2E, 0, 0, 0, 0}), artwork.ErrCorrupt},
		{"webp lossless version", riffWebP("VP8L", []byte{0x2F, 0, 0, 0, 0x20}), artwork.ErrCorrupt},
		{"webp lossy start code", riffWebP("VP8 ", []byte{0, 0, 0, 1, 2, 3, 1, 0, 1, 0}), artwork.ErrCorrupt},
		{"webp lossy not a key frame", riffWebP("VP8 ", []byte{1, 0, 0, 0x9D, 0x01, 0x2A, 1, 0, 1, 0}), artwork.ErrCorrupt},
		{"webp lossy zero size", webpVP8(0, 5), artwork.ErrCorrupt},
		{"webp chunk too small", riffWebP("VP8X", []byte{0, 0, 0}), artwork.ErrCorrupt},
		{"webp canvas over the limit", webpVP8X(1<<24, 1<<24, 0), artwork.ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info, err := artwork.ReadImageInfo(bytes.NewReader(c.file))
			if !errors.Is(err, c.want) {
				t.Fatalf("got %+v, %v; want %v", info, err, c.want)
			}
			if info != (artwork.ImageInfo{}) {
				t.Fatalf("an error must come with no info, got %+v", info)
			}
		})
	}
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// countingReader counts what was read from it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestReadImageInfoSizeCap feeds endless metadata: the reader stops at MaxHeaderBytes.
func TestReadImageInfoSizeCap(t *testing.T) {
	gray := encodePNG(t, image.NewGray(image.Rect(0, 0, 4, 4)))
	// A PNG whose first ancillary chunk claims 1 GiB, followed by endless zeros.
	hugeChunk := append(binary.BigEndian.AppendUint32(nil, 1<<30), "zzZz"...)
	// A JPEG whose APP2 segments (like a long ICC profile) never end.
	app2 := jpegSegment(0xE2, make([]byte, 65533))
	cases := []struct {
		name string
		r    io.Reader
	}{
		{"png huge chunk", io.MultiReader(bytes.NewReader(gray[:33]), bytes.NewReader(hugeChunk), zeros{})},
		{"jpeg endless segments", io.MultiReader(bytes.NewReader([]byte{0xFF, 0xD8}), repeatReader(app2))},
		{"jpeg endless stray bytes", io.MultiReader(bytes.NewReader([]byte{0xFF, 0xD8}), zeros{})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cr := &countingReader{r: c.r}
			_, err := artwork.ReadImageInfo(cr)
			if !errors.Is(err, artwork.ErrHeaderTooLarge) {
				t.Fatalf("got %v, want ErrHeaderTooLarge", err)
			}
			if cr.n > artwork.MaxHeaderBytes {
				t.Fatalf("read %d bytes, over the cap of %d", cr.n, artwork.MaxHeaderBytes)
			}
		})
	}
}

// repeatReader repeats b forever.
func repeatReader(b []byte) io.Reader {
	return &repeater{b: b}
}

type repeater struct {
	b   []byte
	off int
}

func (r *repeater) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.off:])
		n += c
		r.off = (r.off + c) % len(r.b)
	}
	return n, nil
}

// failingReader fails after its data.
type failingReader struct{ data []byte }

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, errors.New("connection reset")
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestReadImageInfoReaderError(t *testing.T) {
	png := encodePNG(t, image.NewGray(image.Rect(0, 0, 4, 4)))
	_, err := artwork.ReadImageInfo(&failingReader{data: png[:20]})
	if err == nil || !strings.Contains(err.Error(), "connection reset") || errors.Is(err, artwork.ErrTruncated) {
		t.Fatalf("a failing reader's error must come through: %v", err)
	}
}

func TestImageInfoContextValue(t *testing.T) {
	info := artwork.ImageInfo{Format: "png", Width: 3000, Height: 2000, DPIX: 72, DPIY: 72, HasAlpha: true}
	v := info.ContextValue("logo.png")
	if v["widthPx"] != 3000 || v["heightPx"] != 2000 || v["fileName"] != "logo.png" || v["dpi"] != 72.0 || v["hasAlpha"] != true {
		t.Fatalf("context value %v", v)
	}
	if info.Pixels() != (artwork.Pixels{W: 3000, H: 2000}) {
		t.Fatal("pixels")
	}
}

// FuzzReadImageInfo feeds arbitrary bytes: ReadImageInfo never panics, returns a positive
// size or one of its errors, and agrees with the standard library on PNG and JPEG sizes
// whenever both read a file.
func FuzzReadImageInfo(f *testing.F) {
	gray := encodePNG(f, image.NewGray(image.Rect(0, 0, 31, 17)))
	jpg := encodeJPEG(f, 16, 8)
	for _, seed := range [][]byte{
		gray, withAfterIHDR(gray, pHYs(11811), pngChunk("tRNS", []byte{0, 0})),
		jpg, withAfterSOI(jpg, jfif(1, 300, 300), exif(binary.LittleEndian, 300, 1, 2)),
		webpVP8L(640, 480, true), webpVP8X(5000, 3000, 0x12), webpVP8(1024, 768),
		{}, {0xFF, 0xD8}, []byte("RIFF\x00\x00\x00\x00WEBP"), []byte("GIF89a"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := artwork.ReadImageInfo(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, artwork.ErrTruncated) && !errors.Is(err, artwork.ErrCorrupt) &&
				!errors.Is(err, artwork.ErrUnknownFormat) && !errors.Is(err, artwork.ErrHeaderTooLarge) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if info != (artwork.ImageInfo{}) {
				t.Fatalf("an error must come with no info: %+v", info)
			}
			return
		}
		if info.Width <= 0 || info.Height <= 0 || info.DPIX < 0 || info.DPIY < 0 {
			t.Fatalf("bad info %+v", info)
		}
		switch info.Format {
		case "png", "jpeg":
			cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
			if err == nil && (format != info.Format || cfg.Width != info.Width || cfg.Height != info.Height) {
				t.Fatalf("got %+v, standard library %s %dx%d", info, format, cfg.Width, cfg.Height)
			}
		case "webp":
		default:
			t.Fatalf("format %q", info.Format)
		}
	})
}
