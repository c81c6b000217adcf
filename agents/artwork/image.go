package artwork

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// ImageInfo is what an image file's header says about it. Only the header is read: the
// pixels are never decoded, so a 100-megapixel upload costs a few kilobytes of reading.
type ImageInfo struct {
	// Format is "png", "jpeg" or "webp".
	Format string `json:"format"`
	// Width and Height are the image's size in pixels (a WebP's canvas).
	Width  int `json:"widthPx"`
	Height int `json:"heightPx"`
	// DPIX and DPIY are the resolution the file's metadata declares (PNG pHYs, JPEG JFIF
	// density or EXIF resolution), rounded to two decimals; 0 when the file declares none.
	// Print size depends on the pixels and the chosen print width, not on this value.
	DPIX float64 `json:"dpiX,omitempty"`
	DPIY float64 `json:"dpiY,omitempty"`
	// HasAlpha reports a transparency channel (PNG gray+alpha, RGBA or tRNS; WebP alpha).
	HasAlpha bool `json:"hasAlpha"`
	// Animated reports an animated WebP.
	Animated bool `json:"animated,omitempty"`
}

// Pixels is the image's size.
func (i ImageInfo) Pixels() Pixels { return Pixels{W: i.Width, H: i.Height} }

// ContextValue is the value an upload endpoint puts in a chat request's context under
// "artwork", where the agent reads it: {"widthPx","heightPx","fileName","format","dpi",
// "hasAlpha"}.
func (i ImageInfo) ContextValue(fileName string) map[string]any {
	v := map[string]any{"widthPx": i.Width, "heightPx": i.Height, "format": i.Format, "hasAlpha": i.HasAlpha}
	if fileName != "" {
		v["fileName"] = fileName
	}
	if i.DPIX > 0 {
		v["dpi"] = i.DPIX
	}
	return v
}

// MaxHeaderBytes is how far ReadImageInfo reads into a file looking for its size. Metadata
// (EXIF, ICC profiles, thumbnails) may precede it; 8 MiB is far more than real files carry.
const MaxHeaderBytes = 8 << 20

// Errors of ReadImageInfo; the returned errors wrap one of them with details.
var (
	// ErrUnknownFormat: the bytes are not a PNG, JPEG or WebP file.
	ErrUnknownFormat = errors.New("not a PNG, JPEG or WebP image")
	// ErrTruncated: the file ends before its size is known.
	ErrTruncated = errors.New("the image file is truncated")
	// ErrCorrupt: the header is malformed.
	ErrCorrupt = errors.New("the image header is corrupt")
	// ErrHeaderTooLarge: no size was found within MaxHeaderBytes.
	ErrHeaderTooLarge = errors.New("the image size was not found in the first 8 MiB")
)

// ReadImageInfo reads the size, declared resolution and transparency of a PNG, JPEG or WebP
// image from its header, reading at most MaxHeaderBytes of r and decoding no pixels.
func ReadImageInfo(r io.Reader) (ImageInfo, error) {
	br := &headerReader{r: bufio.NewReaderSize(&limitReader{r: r, n: MaxHeaderBytes}, 4096)}
	magic, err := br.peek(12)
	if err != nil && !errors.Is(err, ErrTruncated) {
		return ImageInfo{}, err
	}
	var info ImageInfo
	switch {
	case bytes.HasPrefix(magic, pngSignature):
		info, err = readPNG(br)
	case bytes.HasPrefix(magic, []byte{0xFF, 0xD8}):
		info, err = readJPEG(br)
	case len(magic) >= 12 && string(magic[:4]) == "RIFF" && string(magic[8:12]) == "WEBP":
		info, err = readWebP(br)
	case len(magic) == 0:
		return ImageInfo{}, fmt.Errorf("%w: the file is empty", ErrTruncated)
	case len(magic) < 12 && startsKnownFormat(magic):
		// Too short to tell, but the start of a known format.
		return ImageInfo{}, fmt.Errorf("%w: only %d bytes", ErrTruncated, len(magic))
	default:
		return ImageInfo{}, ErrUnknownFormat
	}
	if err != nil {
		return ImageInfo{}, err
	}
	if info.Width <= 0 || info.Height <= 0 {
		return ImageInfo{}, fmt.Errorf("%w: %s: the size is %d × %d", ErrCorrupt, info.Format, info.Width, info.Height)
	}
	return info, nil
}

// startsKnownFormat reports whether a file shorter than 12 bytes begins like a PNG, JPEG or
// WebP file.
func startsKnownFormat(b []byte) bool {
	if bytes.HasPrefix(pngSignature, b) || bytes.Equal(b, []byte{0xFF}) {
		return true
	}
	if len(b) <= 4 {
		return bytes.HasPrefix([]byte("RIFF"), b)
	}
	return string(b[:4]) == "RIFF" && (len(b) <= 8 || bytes.HasPrefix([]byte("WEBP"), b[8:]))
}

// limitReader reads at most n bytes and then reports ErrHeaderTooLarge, so a file that is
// all metadata cannot keep the reader busy.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, ErrHeaderTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// headerReader reads exact byte counts, turning an early end into ErrTruncated.
type headerReader struct {
	r *bufio.Reader
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrTruncated
	}
	return err
}

// peek returns up to n bytes without consuming them; fewer with ErrTruncated at the end.
func (h *headerReader) peek(n int) ([]byte, error) {
	b, err := h.r.Peek(n)
	if err != nil {
		return b, truncated(err)
	}
	return b, nil
}

func (h *headerReader) full(n int) ([]byte, error) {
	buf := make([]byte, n)
	if _, err := io.ReadFull(h.r, buf); err != nil {
		return nil, truncated(err)
	}
	return buf, nil
}

func (h *headerReader) byte() (byte, error) {
	b, err := h.r.ReadByte()
	if err != nil {
		return 0, truncated(err)
	}
	return b, nil
}

func (h *headerReader) skip(n int64) error {
	if _, err := io.CopyN(io.Discard, h.r, n); err != nil {
		return truncated(err)
	}
	return nil
}

func round2DPI(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return math.Round(v*100) / 100
}

// PNG: the signature, IHDR first, then chunks up to the first IDAT; pHYs and tRNS must come
// before it.

var pngSignature = []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}

func readPNG(h *headerReader) (ImageInfo, error) {
	info := ImageInfo{Format: "png"}
	if err := h.skip(8); err != nil {
		return info, fmt.Errorf("png: %w", err)
	}
	first := true
	for {
		head, err := h.full(8)
		if err != nil {
			return info, fmt.Errorf("png: %w", err)
		}
		length := binary.BigEndian.Uint32(head[:4])
		typ := head[4:8]
		if length > math.MaxInt32 {
			return info, fmt.Errorf("%w: png: chunk length %d", ErrCorrupt, length)
		}
		for _, c := range typ {
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
				return info, fmt.Errorf("%w: png: bad chunk type %q", ErrCorrupt, typ)
			}
		}
		name := string(typ)
		if first != (name == "IHDR") {
			return info, fmt.Errorf("%w: png: IHDR must come first", ErrCorrupt)
		}
		switch name {
		case "IHDR", "pHYs":
			want := map[string]uint32{"IHDR": 13, "pHYs": 9}[name]
			if length != want {
				return info, fmt.Errorf("%w: png: %s has length %d, not %d", ErrCorrupt, name, length, want)
			}
			body, err := h.full(int(length) + 4)
			if err != nil {
				return info, fmt.Errorf("png: %w", err)
			}
			data, crc := body[:length], binary.BigEndian.Uint32(body[length:])
			if crc32.Update(crc32.ChecksumIEEE(typ), crc32.IEEETable, data) != crc {
				return info, fmt.Errorf("%w: png: %s checksum mismatch", ErrCorrupt, name)
			}
			if name == "IHDR" {
				w, ht := binary.BigEndian.Uint32(data[0:4]), binary.BigEndian.Uint32(data[4:8])
				if w == 0 || ht == 0 || w > math.MaxInt32 || ht > math.MaxInt32 {
					return info, fmt.Errorf("%w: png: size %d × %d", ErrCorrupt, w, ht)
				}
				info.Width, info.Height = int(w), int(ht)
				switch data[9] { // colour type
				case 0, 2, 3:
				case 4, 6:
					info.HasAlpha = true
				default:
					return info, fmt.Errorf("%w: png: colour type %d", ErrCorrupt, data[9])
				}
			} else if data[8] == 1 { // pixels per metre
				info.DPIX = round2DPI(float64(binary.BigEndian.Uint32(data[0:4])) * 0.0254)
				info.DPIY = round2DPI(float64(binary.BigEndian.Uint32(data[4:8])) * 0.0254)
			}
		case "IDAT", "IEND":
			if name == "IEND" {
				return info, fmt.Errorf("%w: png: no image data", ErrCorrupt)
			}
			return info, nil
		default:
			if name == "tRNS" {
				info.HasAlpha = true
			}
			if err := h.skip(int64(length) + 4); err != nil {
				return info, fmt.Errorf("png: %w", err)
			}
		}
		first = false
	}
}

// JPEG: markers from SOI to the first frame header (SOFn); JFIF (APP0) and EXIF (APP1)
// segments on the way give the declared resolution.

func readJPEG(h *headerReader) (ImageInfo, error) {
	info := ImageInfo{Format: "jpeg"}
	if err := h.skip(2); err != nil {
		return info, fmt.Errorf("jpeg: %w", err)
	}
	var exifX, exifY float64
	for {
		// Find the next marker: 0xFF, possibly padded with more 0xFF; like libjpeg and the
		// standard library, stray bytes between segments are skipped.
		b, err := h.byte()
		if err != nil {
			return info, fmt.Errorf("jpeg: %w", err)
		}
		if b != 0xFF {
			continue
		}
		marker := byte(0xFF)
		for marker == 0xFF {
			if marker, err = h.byte(); err != nil {
				return info, fmt.Errorf("jpeg: %w", err)
			}
		}
		switch {
		case marker == 0x00:
			continue // a stuffed byte, not a marker
		case marker == 0x01 || marker >= 0xD0 && marker <= 0xD7:
			continue // standalone markers without a length
		case marker == 0xD8:
			return info, fmt.Errorf("%w: jpeg: a second start-of-image marker", ErrCorrupt)
		case marker == 0xD9:
			return info, fmt.Errorf("%w: jpeg: the image ends before its frame header", ErrCorrupt)
		case marker == 0xDA:
			return info, fmt.Errorf("%w: jpeg: scan data before the frame header", ErrCorrupt)
		}
		lb, err := h.full(2)
		if err != nil {
			return info, fmt.Errorf("jpeg: %w", err)
		}
		length := int(binary.BigEndian.Uint16(lb))
		if length < 2 {
			return info, fmt.Errorf("%w: jpeg: segment %#02x has length %d", ErrCorrupt, marker, length)
		}
		n := length - 2
		switch {
		case isSOF(marker):
			if n < 6 {
				return info, fmt.Errorf("%w: jpeg: frame header of %d bytes", ErrCorrupt, n)
			}
			data, err := h.full(6)
			if err != nil {
				return info, fmt.Errorf("jpeg: %w", err)
			}
			info.Height = int(binary.BigEndian.Uint16(data[1:3]))
			info.Width = int(binary.BigEndian.Uint16(data[3:5]))
			if info.Height == 0 {
				return info, fmt.Errorf("%w: jpeg: the height is given later (DNL), which is not supported", ErrCorrupt)
			}
			if info.DPIX == 0 && exifX > 0 {
				info.DPIX, info.DPIY = exifX, exifY
			}
			return info, nil
		case marker == 0xE0 || marker == 0xE1:
			data, err := h.full(n)
			if err != nil {
				return info, fmt.Errorf("jpeg: %w", err)
			}
			if marker == 0xE0 {
				if x, y, ok := jfifDensity(data); ok && info.DPIX == 0 {
					info.DPIX, info.DPIY = x, y
				}
			} else if x, y, ok := exifResolution(data); ok && exifX == 0 {
				exifX, exifY = x, y
			}
		default:
			if err := h.skip(int64(n)); err != nil {
				return info, fmt.Errorf("jpeg: %w", err)
			}
		}
	}
}

// isSOF reports the frame-header markers: C0-CF except DHT (C4), JPG (C8) and DAC (CC).
func isSOF(m byte) bool {
	return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC
}

// jfifDensity reads an APP0 JFIF segment: "JFIF\0", version, units (1 = per inch, 2 = per
// cm), X and Y density.
func jfifDensity(d []byte) (x, y float64, ok bool) {
	if len(d) < 12 || string(d[:5]) != "JFIF\x00" {
		return 0, 0, false
	}
	units := d[7]
	dx, dy := float64(binary.BigEndian.Uint16(d[8:10])), float64(binary.BigEndian.Uint16(d[10:12]))
	switch units {
	case 1:
	case 2:
		dx, dy = dx*cmPerInch, dy*cmPerInch
	default:
		return 0, 0, false // 0: an aspect ratio only
	}
	if dx == 0 || dy == 0 {
		return 0, 0, false
	}
	return round2DPI(dx), round2DPI(dy), true
}

// exifResolution reads XResolution, YResolution and ResolutionUnit from IFD0 of an APP1
// EXIF segment.
func exifResolution(d []byte) (x, y float64, ok bool) {
	if len(d) < 14 || string(d[:6]) != "Exif\x00\x00" {
		return 0, 0, false
	}
	t := d[6:] // the TIFF structure; offsets are relative to it
	var bo binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 0, 0, false
	}
	ifd := uint64(bo.Uint32(t[4:8]))
	if ifd+2 > uint64(len(t)) {
		return 0, 0, false
	}
	count := uint64(bo.Uint16(t[ifd:]))
	unit := uint16(2) // inches, the default
	rational := func(off uint32) float64 {
		o := uint64(off)
		if o+8 > uint64(len(t)) {
			return 0
		}
		num, den := bo.Uint32(t[o:]), bo.Uint32(t[o+4:])
		if den == 0 {
			return 0
		}
		return float64(num) / float64(den)
	}
	for i := uint64(0); i < count; i++ {
		e := ifd + 2 + i*12
		if e+12 > uint64(len(t)) {
			break
		}
		tag, typ, value := bo.Uint16(t[e:]), bo.Uint16(t[e+2:]), t[e+8:e+12]
		switch {
		case tag == 0x011A && typ == 5:
			x = rational(bo.Uint32(value))
		case tag == 0x011B && typ == 5:
			y = rational(bo.Uint32(value))
		case tag == 0x0128 && typ == 3:
			unit = bo.Uint16(value)
		}
	}
	switch unit {
	case 2:
	case 3:
		x, y = x*cmPerInch, y*cmPerInch
	default:
		return 0, 0, false
	}
	x, y = round2DPI(x), round2DPI(y)
	if x == 0 || y == 0 {
		return 0, 0, false
	}
	return x, y, true
}

// WebP: "RIFF", size, "WEBP", then the first chunk: "VP8 " (lossy), "VP8L" (lossless) or
// "VP8X" (extended, with the canvas size and feature flags). WebP declares no resolution
// outside EXIF, which is not read.

func readWebP(h *headerReader) (ImageInfo, error) {
	info := ImageInfo{Format: "webp"}
	head, err := h.full(20)
	if err != nil {
		return info, fmt.Errorf("webp: %w", err)
	}
	fourcc, size := string(head[12:16]), binary.LittleEndian.Uint32(head[16:20])
	switch fourcc {
	case "VP8 ":
		// Frame tag (3 bytes, bit 0 clear on a key frame), start code 9D 01 2A, then 14-bit
		// width and height, each with 2 bits of scaling above.
		if size < 10 {
			return info, fmt.Errorf("%w: webp: VP8 chunk of %d bytes", ErrCorrupt, size)
		}
		d, err := h.full(10)
		if err != nil {
			return info, fmt.Errorf("webp: %w", err)
		}
		if d[0]&1 != 0 {
			return info, fmt.Errorf("%w: webp: the first VP8 frame is not a key frame", ErrCorrupt)
		}
		if d[3] != 0x9D || d[4] != 0x01 || d[5] != 0x2A {
			return info, fmt.Errorf("%w: webp: bad VP8 start code", ErrCorrupt)
		}
		info.Width = int(binary.LittleEndian.Uint16(d[6:8]) & 0x3FFF)
		info.Height = int(binary.LittleEndian.Uint16(d[8:10]) & 0x3FFF)
	case "VP8L":
		// Signature 0x2F, then 14 bits of width-1, 14 of height-1, 1 alpha hint and a 3-bit
		// version that must be 0.
		if size < 5 {
			return info, fmt.Errorf("%w: webp: VP8L chunk of %d bytes", ErrCorrupt, size)
		}
		d, err := h.full(5)
		if err != nil {
			return info, fmt.Errorf("webp: %w", err)
		}
		if d[0] != 0x2F {
			return info, fmt.Errorf("%w: webp: bad VP8L signature", ErrCorrupt)
		}
		bits := binary.LittleEndian.Uint32(d[1:5])
		if bits>>29 != 0 {
			return info, fmt.Errorf("%w: webp: VP8L version %d", ErrCorrupt, bits>>29)
		}
		info.Width = int(bits&0x3FFF) + 1
		info.Height = int(bits>>14&0x3FFF) + 1
		info.HasAlpha = bits>>28&1 == 1
	case "VP8X":
		// Flags (ICC 0x20, alpha 0x10, EXIF 0x08, XMP 0x04, animation 0x02), 3 reserved
		// bytes, then 24-bit canvas width-1 and height-1.
		if size < 10 {
			return info, fmt.Errorf("%w: webp: VP8X chunk of %d bytes", ErrCorrupt, size)
		}
		d, err := h.full(10)
		if err != nil {
			return info, fmt.Errorf("webp: %w", err)
		}
		info.HasAlpha = d[0]&0x10 != 0
		info.Animated = d[0]&0x02 != 0
		info.Width = int(uint32(d[4])|uint32(d[5])<<8|uint32(d[6])<<16) + 1
		info.Height = int(uint32(d[7])|uint32(d[8])<<8|uint32(d[9])<<16) + 1
		if uint64(info.Width)*uint64(info.Height) > math.MaxUint32 {
			return info, fmt.Errorf("%w: webp: canvas %d × %d is over the format's limit", ErrCorrupt, info.Width, info.Height)
		}
	default:
		return info, fmt.Errorf("%w: webp: unknown first chunk %q", ErrCorrupt, fourcc)
	}
	return info, nil
}
