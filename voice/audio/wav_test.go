package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"
)

// wavSpec describes a WAV file for makeWAV.
type wavSpec struct {
	tag        uint16
	channels   int
	rate       int
	bits       int
	extensible bool     // wrap tag in WAVE_FORMAT_EXTENSIBLE
	before     [][]byte // raw chunks (id+size+body) placed between fmt and data
	dataSize   uint32   // 0: the real length
}

func chunk(id string, body []byte) []byte {
	c := append([]byte(id), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(c[4:], uint32(len(body)))
	c = append(c, body...)
	if len(body)%2 == 1 {
		c = append(c, 0)
	}
	return c
}

func makeWAV(s wavSpec, data []byte) []byte {
	blockAlign := s.channels * s.bits / 8
	fmtBody := make([]byte, 16)
	tag := s.tag
	if s.extensible {
		tag = wavFormatExtensible
	}
	binary.LittleEndian.PutUint16(fmtBody[0:], tag)
	binary.LittleEndian.PutUint16(fmtBody[2:], uint16(s.channels))
	binary.LittleEndian.PutUint32(fmtBody[4:], uint32(s.rate))
	binary.LittleEndian.PutUint32(fmtBody[8:], uint32(s.rate*blockAlign))
	binary.LittleEndian.PutUint16(fmtBody[12:], uint16(blockAlign))
	binary.LittleEndian.PutUint16(fmtBody[14:], uint16(s.bits))
	if s.extensible {
		ext := make([]byte, 24)
		binary.LittleEndian.PutUint16(ext[0:], 22)
		binary.LittleEndian.PutUint16(ext[2:], uint16(s.bits))
		binary.LittleEndian.PutUint16(ext[8:], s.tag)
		copy(ext[10:], extensibleGUIDTail)
		fmtBody = append(fmtBody, ext...)
	}
	body := append([]byte("WAVE"), chunk("fmt ", fmtBody)...)
	for _, c := range s.before {
		body = append(body, c...)
	}
	dc := chunk("data", data)
	if s.dataSize != 0 {
		binary.LittleEndian.PutUint32(dc[4:], s.dataSize)
	}
	body = append(body, dc...)
	return append(chunk("RIFF", body)[:8], body...)
}

func TestWAVRoundTrip(t *testing.T) {
	for _, rate := range []int{8000, 16000, 24000, 44100, 48000} {
		samples := append(sine(rate, 440, 0.25, 0.9), 32767, -32768, 0, 1, -1)
		p := PCM{Samples: samples, Rate: rate}
		b := EncodeWAV(p)
		if len(b) != 44+2*len(samples) {
			t.Fatalf("rate %d: EncodeWAV wrote %d bytes, want a 44-byte header plus %d", rate, len(b), 2*len(samples))
		}
		if got := binary.LittleEndian.Uint32(b[4:]); got != uint32(len(b)-8) {
			t.Errorf("rate %d: RIFF size %d, want %d", rate, got, len(b)-8)
		}
		got, err := DecodeWAV(b)
		if err != nil {
			t.Fatalf("rate %d: DecodeWAV: %v", rate, err)
		}
		if got.Rate != rate || !slicesEqual(got.Samples, samples) {
			t.Fatalf("rate %d: round trip changed the audio (rate %d, %d samples)", rate, got.Rate, len(got.Samples))
		}
		if want := time.Duration(len(samples)) * time.Second / time.Duration(rate); got.Duration() != want {
			t.Errorf("rate %d: Duration %v, want %v", rate, got.Duration(), want)
		}
	}
	// An empty but well-formed WAV is not an error: it is zero seconds of audio.
	got, err := DecodeWAV(EncodeWAV(PCM{Rate: 16000}))
	if err != nil || len(got.Samples) != 0 || got.Rate != 16000 {
		t.Fatalf("empty WAV: got %d samples at %d Hz, err %v", len(got.Samples), got.Rate, err)
	}
}

func slicesEqual(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDecodeWAVStereoDownmix(t *testing.T) {
	left := sine(16000, 1000, 0.5, 0.5)
	right := sine(16000, 300, 0.5, 0.25)
	data := make([]byte, 0, 4*len(left))
	for i := range left {
		data = binary.LittleEndian.AppendUint16(data, uint16(left[i]))
		data = binary.LittleEndian.AppendUint16(data, uint16(right[i]))
	}
	p, err := DecodeWAV(makeWAV(wavSpec{tag: wavFormatPCM, channels: 2, rate: 16000, bits: 16}, data))
	if err != nil {
		t.Fatal(err)
	}
	if p.Rate != 16000 || len(p.Samples) != len(left) {
		t.Fatalf("got %d samples at %d Hz, want %d at 16000", len(p.Samples), p.Rate, len(left))
	}
	for i, v := range p.Samples {
		want := (float64(left[i]) + float64(right[i])) / 2
		if math.Abs(float64(v)-want) > 0.5 {
			t.Fatalf("sample %d: %d, want the channel average %.1f", i, v, want)
		}
	}
	// Both tones survive at half their level: the channels were averaged, not summed or
	// one of them dropped.
	if a := amplitudeAt(p.Samples, 16000, 1000); !within(a, 0.25, 0.02) {
		t.Errorf("1 kHz (left) amplitude %.3f, want 0.25", a)
	}
	if a := amplitudeAt(p.Samples, 16000, 300); !within(a, 0.125, 0.02) {
		t.Errorf("300 Hz (right) amplitude %.3f, want 0.125", a)
	}
}

// TestDecodeWAVSampleFormats decodes the same tone written in every sample format DecodeWAV
// reads and checks each comes out as the tone.
func TestDecodeWAVSampleFormats(t *testing.T) {
	const rate = 8000
	tone := sine(rate, 500, 0.25, 0.5)
	enc := func(channels int, put func([]byte, float64) []byte) []byte {
		var b []byte
		for _, v := range tone {
			for range channels {
				b = put(b, float64(v)/32768)
			}
		}
		return b
	}
	cases := []struct {
		name string
		spec wavSpec
		data []byte
		tol  float64 // allowed error per sample, in 16-bit units
	}{
		{"pcm8", wavSpec{tag: wavFormatPCM, channels: 1, rate: rate, bits: 8}, enc(1, func(b []byte, x float64) []byte {
			return append(b, byte(math.Round(x*128)+128))
		}), 256},
		{"pcm16-3ch", wavSpec{tag: wavFormatPCM, channels: 3, rate: rate, bits: 16}, enc(3, func(b []byte, x float64) []byte {
			return binary.LittleEndian.AppendUint16(b, uint16(int16(math.Round(x*32768))))
		}), 1},
		{"pcm24", wavSpec{tag: wavFormatPCM, channels: 1, rate: rate, bits: 24}, enc(1, func(b []byte, x float64) []byte {
			v := int32(math.Round(x * (1 << 23)))
			return append(b, byte(v), byte(v>>8), byte(v>>16))
		}), 1},
		{"pcm32-stereo", wavSpec{tag: wavFormatPCM, channels: 2, rate: rate, bits: 32}, enc(2, func(b []byte, x float64) []byte {
			return binary.LittleEndian.AppendUint32(b, uint32(int32(math.Round(x*(1<<31)))))
		}), 1},
		{"float32", wavSpec{tag: wavFormatFloat, channels: 1, rate: rate, bits: 32}, enc(1, func(b []byte, x float64) []byte {
			return binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(x)))
		}), 1},
		{"float64-stereo", wavSpec{tag: wavFormatFloat, channels: 2, rate: rate, bits: 64}, enc(2, func(b []byte, x float64) []byte {
			return binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
		}), 1},
		{"extensible-pcm16-stereo", wavSpec{tag: wavFormatPCM, channels: 2, rate: rate, bits: 16, extensible: true}, enc(2, func(b []byte, x float64) []byte {
			return binary.LittleEndian.AppendUint16(b, uint16(int16(math.Round(x*32768))))
		}), 1},
		{"ulaw", wavSpec{tag: wavFormatULaw, channels: 1, rate: rate, bits: 8}, EncodeULaw(tone), 600},
		{"alaw", wavSpec{tag: wavFormatALaw, channels: 1, rate: rate, bits: 8}, EncodeALaw(tone), 600},
		{"extra-chunks", wavSpec{tag: wavFormatPCM, channels: 1, rate: rate, bits: 16,
			before: [][]byte{chunk("LIST", []byte("INFOISFT\x05\x00\x00\x00test\x00")), chunk("odd ", []byte{1, 2, 3})}},
			PCM16ToBytes(tone), 0},
		{"streaming-size", wavSpec{tag: wavFormatPCM, channels: 1, rate: rate, bits: 16, dataSize: 0xFFFFFFFF},
			PCM16ToBytes(tone), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := DecodeWAV(makeWAV(tc.spec, tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if p.Rate != rate || len(p.Samples) != len(tone) {
				t.Fatalf("got %d samples at %d Hz, want %d at %d", len(p.Samples), p.Rate, len(tone), rate)
			}
			for i, v := range p.Samples {
				if d := math.Abs(float64(v) - float64(tone[i])); d > tc.tol {
					t.Fatalf("sample %d: %d, want %d ±%.0f", i, v, tone[i], tc.tol)
				}
			}
		})
	}
}

func TestDecodeWAVBadInput(t *testing.T) {
	pcm := PCM16ToBytes(sine(16000, 440, 0.1, 0.5))
	valid := makeWAV(wavSpec{tag: wavFormatPCM, channels: 1, rate: 16000, bits: 16}, pcm)
	mp3 := readTestdata(t, "sine1k_44100_stereo.mp3")
	ogg := readTestdata(t, "sine440_48000_mono.opus")

	withFmt := func(mutate func(f []byte)) []byte {
		b := append([]byte(nil), valid...)
		mutate(b[20:36])
		return b
	}
	random := make([]byte, 4096)
	seed := uint32(7)
	for i := range random {
		seed = seed*1664525 + 1013904223
		random[i] = byte(seed >> 24)
	}
	// 30 minutes at 1 kHz 8-bit is under MaxDecodeBytes but over MaxDecodeDuration.
	long := makeWAV(wavSpec{tag: wavFormatPCM, channels: 1, rate: 1000, bits: 8},
		bytes.Repeat([]byte{128}, int(MaxDecodeDuration/time.Second)*1000+1))

	cases := []struct {
		name    string
		in      []byte
		want    error
		message string // a part of the error text the caller will see
	}{
		{"empty", nil, ErrEmpty, "no bytes"},
		{"10-byte RIFF", valid[:10], ErrTruncated, "shorter than the 12-byte"},
		{"header only", valid[:36], ErrTruncated, "without a data chunk"},
		{"data size beyond the end", valid[:len(valid)-100], ErrTruncated, "declares"},
		{"fmt chunk cut short", valid[:30], ErrTruncated, "fmt chunk declares"},
		{"IMA ADPCM codec", withFmt(func(f []byte) { binary.LittleEndian.PutUint16(f[0:], 0x0011) }), ErrUnsupportedFormat, "IMA ADPCM"},
		{"unknown codec", withFmt(func(f []byte) { binary.LittleEndian.PutUint16(f[0:], 0x1234) }), ErrUnsupportedFormat, "0x1234"},
		{"12-bit PCM", withFmt(func(f []byte) { binary.LittleEndian.PutUint16(f[14:], 12) }), ErrUnsupportedFormat, "12 bits"},
		{"zero channels", withFmt(func(f []byte) { binary.LittleEndian.PutUint16(f[2:], 0) }), ErrUnsupportedFormat, "0 channels"},
		{"zero rate", withFmt(func(f []byte) { binary.LittleEndian.PutUint32(f[4:], 0) }), ErrUnsupportedFormat, "sample rate 0"},
		{"block align lies", withFmt(func(f []byte) { binary.LittleEndian.PutUint16(f[12:], 3) }), ErrUnsupportedFormat, "block align"},
		{"data before fmt", append(append([]byte("RIFF\x00\x00\x00\x00WAVE"), chunk("data", pcm)...), valid[12:36]...), ErrUnsupportedFormat, "before the fmt"},
		{"random bytes", random, ErrUnsupportedFormat, "no RIFF/WAVE header"},
		{"RIFF but AVI", append([]byte("RIFF\x00\x00\x00\x00AVI "), random[:64]...), ErrUnsupportedFormat, "not WAVE"},
		{"RIFX", append([]byte("RIFX"), valid[4:]...), ErrUnsupportedFormat, "RIFX"},
		{"MP3 labelled WAV", mp3, ErrMislabelled, "the bytes are mp3"},
		{"Ogg labelled WAV", ogg, ErrMislabelled, "the bytes are ogg"},
		{"over MaxDecodeDuration", long, ErrTooLarge, "MaxDecodeDuration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := DecodeWAV(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want one wrapping %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %q does not say %q", err, tc.message)
			}
			if len(p.Samples) != 0 {
				t.Errorf("returned %d samples with an error", len(p.Samples))
			}
		})
	}
}

// TestDecodeWAVRefusesHugeInputCheaply feeds a 30 MB WAV (a valid header promising 30 MB of
// PCM) and checks it is refused with ErrTooLarge without allocating anything like its size.
func TestDecodeWAVRefusesHugeInputCheaply(t *testing.T) {
	const size = 30 << 20
	b := make([]byte, size)
	copy(b, makeWAV(wavSpec{tag: wavFormatPCM, channels: 1, rate: 48000, bits: 16, dataSize: size - 44}, nil))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, errWAV := DecodeWAV(b)
	_, errAny := Decode(b, "", 0)
	runtime.ReadMemStats(&after)

	for name, err := range map[string]error{"DecodeWAV": errWAV, "Decode": errAny} {
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "MaxDecodeBytes") {
			t.Errorf("%s: err = %v, want ErrTooLarge naming MaxDecodeBytes", name, err)
		}
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("refusing the input allocated %d bytes", grew)
	}

	// Just under the limit decodes fine.
	n := MaxDecodeBytes - 44
	n -= n % 2
	p, err := DecodeWAV(makeWAV(wavSpec{tag: wavFormatPCM, channels: 1, rate: 48000, bits: 16}, make([]byte, n)))
	if err != nil || len(p.Samples) != n/2 {
		t.Fatalf("a %d-byte WAV: %d samples, err %v", n+44, len(p.Samples), err)
	}
}
