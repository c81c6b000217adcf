package audio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
)

// WAVE format tags this package reads (the fmt chunk's first field).
const (
	wavFormatPCM        = 0x0001
	wavFormatFloat      = 0x0003
	wavFormatALaw       = 0x0006
	wavFormatULaw       = 0x0007
	wavFormatMP3        = 0x0055
	wavFormatExtensible = 0xFFFE
)

// wavHeaderSize is the size of the canonical header EncodeWAV writes.
const wavHeaderSize = 44

// wavUnknownSize is the chunk size streaming writers (ffmpeg to a pipe, streaming TTS) put in
// the data chunk when they cannot know the length; the data then runs to the end.
const wavUnknownSize = 0xFFFFFFFF

// extensibleGUIDTail is the fixed tail of the KSDATAFORMAT_SUBTYPE_* GUIDs; the first two bytes
// of the GUID are the plain format tag.
var extensibleGUIDTail = []byte{0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71}

// EncodeWAV writes p as a canonical 44-byte-header RIFF/WAVE file: PCM16, mono, at p.Rate.
// It does not check the rate; DecodeWAV (and every player) refuses rates outside
// [MinRate, MaxRate], and Encode checks before calling it.
func EncodeWAV(p PCM) []byte {
	dataLen := 2 * len(p.Samples)
	out := make([]byte, wavHeaderSize+dataLen)
	copy(out[0:], "RIFF")
	binary.LittleEndian.PutUint32(out[4:], uint32(36+dataLen))
	copy(out[8:], "WAVE")
	copy(out[12:], "fmt ")
	binary.LittleEndian.PutUint32(out[16:], 16)
	binary.LittleEndian.PutUint16(out[20:], wavFormatPCM)
	binary.LittleEndian.PutUint16(out[22:], 1)                // channels
	binary.LittleEndian.PutUint32(out[24:], uint32(p.Rate))   // sample rate
	binary.LittleEndian.PutUint32(out[28:], uint32(p.Rate*2)) // byte rate
	binary.LittleEndian.PutUint16(out[32:], 2)                // block align
	binary.LittleEndian.PutUint16(out[34:], 16)               // bits per sample
	copy(out[36:], "data")
	binary.LittleEndian.PutUint32(out[40:], uint32(dataLen))
	for i, v := range p.Samples {
		binary.LittleEndian.PutUint16(out[wavHeaderSize+2*i:], uint16(v))
	}
	return out
}

// wavFormat is what DecodeWAV needs from the fmt chunk.
type wavFormat struct {
	tag        uint16 // resolved tag (the sub-format for WAVE_FORMAT_EXTENSIBLE)
	channels   int
	rate       int
	blockAlign int
	bits       int
}

// DecodeWAV decodes a RIFF/WAVE file to mono PCM16 at the file's rate, averaging all channels.
// It reads integer PCM of 8 (unsigned), 16, 24 and 32 bits, IEEE float of 32 and 64 bits,
// G.711 A-law and µ-law, the WAVE_FORMAT_EXTENSIBLE wrapping of those, and MP3 inside WAV
// (format tag 0x55, decoded with DecodeMP3). Chunks other than fmt and data are skipped. A
// data chunk of size 0xFFFFFFFF (streaming writers) runs to the end of the input. The rate
// must be within [MinRate, MaxRate].
//
// Errors: no bytes -> ErrEmpty; a header or data chunk cut short -> ErrTruncated; bytes that
// are another known format (MP3, Ogg, WebM, FLAC) -> ErrMislabelled; anything else that is not
// a WAV this function reads (other codecs, RIFX, RF64, garbage) -> ErrUnsupportedFormat; over
// MaxDecodeBytes or MaxDecodeDuration -> ErrTooLarge.
func DecodeWAV(b []byte) (PCM, error) {
	if err := checkInput("wav", b); err != nil {
		return PCM{}, err
	}
	if len(b) < 12 || !bytes.Equal(b[0:4], []byte("RIFF")) || !bytes.Equal(b[8:12], []byte("WAVE")) {
		return PCM{}, notWAV(b)
	}

	var (
		f       wavFormat
		haveFmt bool
	)
	off := 12
	for {
		if len(b)-off < 8 {
			if !haveFmt {
				return PCM{}, fmt.Errorf("%w: wav: input ends after %d bytes without a fmt chunk", ErrTruncated, len(b))
			}
			return PCM{}, fmt.Errorf("%w: wav: input ends after %d bytes without a data chunk", ErrTruncated, len(b))
		}
		id := string(b[off : off+4])
		size := binary.LittleEndian.Uint32(b[off+4:])
		off += 8
		remaining := len(b) - off

		switch id {
		case "fmt ":
			if uint64(size) > uint64(remaining) {
				return PCM{}, fmt.Errorf("%w: wav: fmt chunk declares %d bytes but only %d follow", ErrTruncated, size, remaining)
			}
			var err error
			if f, err = parseWAVFormat(b[off : off+int(size)]); err != nil {
				return PCM{}, err
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return PCM{}, fmt.Errorf("%w: wav: data chunk comes before the fmt chunk", ErrUnsupportedFormat)
			}
			data := b[off:]
			if size != wavUnknownSize {
				if uint64(size) > uint64(remaining) {
					return PCM{}, fmt.Errorf("%w: wav: data chunk declares %d bytes but only %d are present",
						ErrTruncated, size, remaining)
				}
				data = b[off : off+int(size)]
			}
			return decodeWAVData(f, data)
		}
		if uint64(size) > uint64(remaining) {
			return PCM{}, fmt.Errorf("%w: wav: %q chunk declares %d bytes but only %d follow", ErrTruncated, id, size, remaining)
		}
		// Chunks are padded to an even size; the pad byte is not counted in size (and some
		// writers leave it out at the very end).
		off += int(size) + int(size&1)
		off = min(off, len(b))
	}
}

// notWAV explains why bytes without a RIFF/WAVE header are refused.
func notWAV(b []byte) error {
	switch {
	case len(b) < 12 && bytes.HasPrefix([]byte("RIFF"), b[:min(len(b), 4)]):
		return fmt.Errorf("%w: wav: %d bytes is shorter than the 12-byte RIFF/WAVE header", ErrTruncated, len(b))
	case bytes.HasPrefix(b, []byte("RIFX")):
		return fmt.Errorf("%w: wav: big-endian RIFX files are not supported", ErrUnsupportedFormat)
	case bytes.HasPrefix(b, []byte("RF64")):
		return fmt.Errorf("%w: wav: RF64 (64-bit WAV) files are not supported", ErrUnsupportedFormat)
	}
	if got := Detect(b); got != "" && got != FormatWAV {
		return fmt.Errorf("%w: labelled wav but the bytes are %s", ErrMislabelled, got)
	}
	if bytes.HasPrefix(b, []byte("RIFF")) {
		return fmt.Errorf("%w: wav: RIFF form type %q is not WAVE", ErrUnsupportedFormat, b[8:12])
	}
	return fmt.Errorf("%w: wav: no RIFF/WAVE header (starts with % x)", ErrUnsupportedFormat, b[:min(len(b), 4)])
}

func parseWAVFormat(c []byte) (wavFormat, error) {
	if len(c) < 16 {
		return wavFormat{}, fmt.Errorf("%w: wav: fmt chunk is %d bytes, needs at least 16", ErrTruncated, len(c))
	}
	f := wavFormat{
		tag:        binary.LittleEndian.Uint16(c[0:]),
		channels:   int(binary.LittleEndian.Uint16(c[2:])),
		rate:       int(binary.LittleEndian.Uint32(c[4:])),
		blockAlign: int(binary.LittleEndian.Uint16(c[12:])),
		bits:       int(binary.LittleEndian.Uint16(c[14:])),
	}
	if f.tag == wavFormatExtensible {
		// cbSize(2) validBits(2) channelMask(4) subFormat GUID(16) follow the 16 basic bytes.
		if len(c) < 40 {
			return wavFormat{}, fmt.Errorf("%w: wav: WAVE_FORMAT_EXTENSIBLE fmt chunk is %d bytes, needs 40", ErrTruncated, len(c))
		}
		guid := c[24:40]
		if !bytes.Equal(guid[2:], extensibleGUIDTail) {
			return wavFormat{}, fmt.Errorf("%w: wav: WAVE_FORMAT_EXTENSIBLE with unknown sub-format % x", ErrUnsupportedFormat, guid)
		}
		f.tag = binary.LittleEndian.Uint16(guid[0:])
	}
	if f.tag == wavFormatMP3 {
		return f, nil // DecodeMP3 reads its own frame headers
	}
	if f.channels < 1 {
		return wavFormat{}, fmt.Errorf("%w: wav: fmt chunk says %d channels", ErrUnsupportedFormat, f.channels)
	}
	if f.rate < MinRate || f.rate > MaxRate {
		return wavFormat{}, fmt.Errorf("%w: wav: sample rate %d Hz is out of range (%d..%d)", ErrUnsupportedFormat, f.rate, MinRate, MaxRate)
	}
	var ok bool
	switch f.tag {
	case wavFormatPCM:
		ok = f.bits == 8 || f.bits == 16 || f.bits == 24 || f.bits == 32
	case wavFormatFloat:
		ok = f.bits == 32 || f.bits == 64
	case wavFormatALaw, wavFormatULaw:
		ok = f.bits == 8
	default:
		return wavFormat{}, fmt.Errorf("%w: wav: codec tag 0x%04x (%s) is not supported; send PCM, float, G.711 or MP3",
			ErrUnsupportedFormat, f.tag, wavCodecName(f.tag))
	}
	if !ok {
		return wavFormat{}, fmt.Errorf("%w: wav: %d bits per sample is not supported for codec tag 0x%04x",
			ErrUnsupportedFormat, f.bits, f.tag)
	}
	if want := f.channels * f.bits / 8; f.blockAlign != want {
		return wavFormat{}, fmt.Errorf("%w: wav: block align %d does not match %d channels of %d bits (want %d)",
			ErrUnsupportedFormat, f.blockAlign, f.channels, f.bits, want)
	}
	return f, nil
}

// wavCodecName names the non-PCM codecs people actually send, for the error message.
func wavCodecName(tag uint16) string {
	switch tag {
	case 0x0002:
		return "Microsoft ADPCM"
	case 0x0011:
		return "IMA ADPCM"
	case 0x0031:
		return "GSM 6.10"
	case 0x0050:
		return "MPEG Layer I/II"
	case 0x0161, 0x0162, 0x0163:
		return "Windows Media Audio"
	case 0x1610, 0x00FF:
		return "AAC"
	case 0x6750, 0x674F, 0x6751:
		return "Vorbis"
	case 0x704F, 0x7050:
		return "Opus"
	case 0xF1AC:
		return "FLAC"
	}
	return "unknown codec"
}

// decodeWAVData turns the data chunk into mono PCM16, averaging channels. A trailing partial
// frame (a writer cut off mid-sample) is dropped.
func decodeWAVData(f wavFormat, data []byte) (PCM, error) {
	if f.tag == wavFormatMP3 {
		p, err := DecodeMP3(data)
		if err != nil {
			return PCM{}, fmt.Errorf("wav: MP3 data chunk: %w", err)
		}
		return p, nil
	}
	frames := len(data) / f.blockAlign
	if err := checkDuration("wav", int64(frames), f.rate); err != nil {
		return PCM{}, err
	}
	out := make([]int16, frames)
	width := f.bits / 8

	// The common case, PCM16 mono, is a straight copy.
	if f.tag == wavFormatPCM && f.bits == 16 && f.channels == 1 {
		for i := range out {
			out[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
		}
		return PCM{Samples: out, Rate: f.rate}, nil
	}

	read := sampleReader(f)
	inv := 1 / float64(f.channels)
	for i := range out {
		frame := data[i*f.blockAlign:]
		var sum float64
		for ch := 0; ch < f.channels; ch++ {
			sum += read(frame[ch*width:])
		}
		out[i] = floatToPCM16(sum * inv)
	}
	return PCM{Samples: out, Rate: f.rate}, nil
}

// sampleReader returns a function that reads one sample of format f as a float in [-1, 1).
func sampleReader(f wavFormat) func([]byte) float64 {
	switch f.tag {
	case wavFormatFloat:
		if f.bits == 64 {
			return func(b []byte) float64 { return finite(math.Float64frombits(binary.LittleEndian.Uint64(b))) }
		}
		return func(b []byte) float64 {
			return finite(float64(math.Float32frombits(binary.LittleEndian.Uint32(b))))
		}
	case wavFormatALaw:
		return func(b []byte) float64 { return float64(alawTable[b[0]]) / 32768 }
	case wavFormatULaw:
		return func(b []byte) float64 { return float64(ulawTable[b[0]]) / 32768 }
	}
	switch f.bits {
	case 8: // 8-bit WAV is unsigned with 128 as silence
		return func(b []byte) float64 { return (float64(b[0]) - 128) / 128 }
	case 16:
		return func(b []byte) float64 { return float64(int16(binary.LittleEndian.Uint16(b))) / 32768 }
	case 24:
		return func(b []byte) float64 {
			v := int32(uint32(b[0])<<8|uint32(b[1])<<16|uint32(b[2])<<24) >> 8
			return float64(v) / (1 << 23)
		}
	default: // 32
		return func(b []byte) float64 { return float64(int32(binary.LittleEndian.Uint32(b))) / (1 << 31) }
	}
}

// finite maps NaN and infinities (corrupt float WAVs) to silence or full scale instead of
// letting them poison the channel average.
func finite(x float64) float64 {
	switch {
	case math.IsNaN(x):
		return 0
	case math.IsInf(x, 1):
		return 1
	case math.IsInf(x, -1):
		return -1
	}
	return x
}
