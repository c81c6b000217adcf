package audio

import (
	"math"
	"testing"
)

// TestG711ReferenceValues checks codes against the ITU-T G.711 tables (as implemented in the
// Sun reference g711.c and ITU-T G.191's STL; the decode values also match sox's for all 256
// codes of both laws).
func TestG711ReferenceValues(t *testing.T) {
	ulawDecode := map[byte]int16{0x00: -32124, 0x7F: 0, 0x80: 32124, 0xFF: 0, 0x10: -15996, 0x9A: 10876, 0xCE: 988}
	alawDecode := map[byte]int16{0xD5: 8, 0x55: -8, 0xAA: 32256, 0x2A: -32256, 0x00: -5504, 0x80: 5504}
	for code, want := range ulawDecode {
		if got := DecodeULaw([]byte{code})[0]; got != want {
			t.Errorf("µ-law 0x%02X decodes to %d, want %d", code, got, want)
		}
	}
	for code, want := range alawDecode {
		if got := DecodeALaw([]byte{code})[0]; got != want {
			t.Errorf("A-law 0x%02X decodes to %d, want %d", code, got, want)
		}
	}
	encode := []struct {
		in         int16
		ulaw, alaw byte
	}{
		{0, 0xFF, 0xD5},         // silence: µ-law all ones, A-law 0x55 inverted with sign
		{-1, 0x7E, 0x55},        // the smallest negative value (an arithmetic shift: -8 in µ-law)
		{32767, 0x80, 0xAA},     // positive full scale
		{-32768, 0x00, 0x2A},    // negative full scale
		{1000, 0xCE, 0xFA},      // mid-range
		{-1000, 0x4E, 0x7A},     // and its mirror
		{32124, 0x80, 0xAA},     // µ-law's largest level
		{-8159 * 4, 0x00, 0x2A}, // past the µ-law clip level
	}
	for _, tc := range encode {
		if got := EncodeULaw([]int16{tc.in})[0]; got != tc.ulaw {
			t.Errorf("µ-law encode %d = 0x%02X, want 0x%02X", tc.in, got, tc.ulaw)
		}
		if got := EncodeALaw([]int16{tc.in})[0]; got != tc.alaw {
			t.Errorf("A-law encode %d = 0x%02X, want 0x%02X", tc.in, got, tc.alaw)
		}
	}
}

// TestG711RoundTrip: every code re-encodes to itself, and every 16-bit value comes back within
// the codec's quantisation step (G.711 keeps ~5 significant bits: the error is at most 1/32 of
// the value's magnitude, plus half the smallest step near zero).
func TestG711RoundTrip(t *testing.T) {
	for c := range 256 {
		code := byte(c)
		if got := EncodeULaw(DecodeULaw([]byte{code}))[0]; got != code && !(code == 0x7F && got == 0xFF) {
			// 0x7F is µ-law's "negative zero"; it decodes to 0, which encodes as 0xFF.
			t.Errorf("µ-law 0x%02X re-encodes to 0x%02X", code, got)
		}
		if got := EncodeALaw(DecodeALaw([]byte{code}))[0]; got != code {
			t.Errorf("A-law 0x%02X re-encodes to 0x%02X", code, got)
		}
	}
	all := make([]int16, 65536)
	for i := range all {
		all[i] = int16(i - 32768)
	}
	laws := []struct {
		name       string
		roundTrip  []int16
		clip, base float64
	}{
		{"µ-law", DecodeULaw(EncodeULaw(all)), 32124, 8},
		{"A-law", DecodeALaw(EncodeALaw(all)), 32256, 8},
	}
	for _, law := range laws {
		for i, got := range law.roundTrip {
			x := float64(all[i])
			want := math.Max(-law.clip, math.Min(law.clip, x)) // beyond the largest level it clips
			if d := math.Abs(float64(got) - want); d > math.Abs(want)/32+law.base+1 {
				t.Fatalf("%s: %d came back as %d (error %.0f)", law.name, all[i], got, d)
			}
		}
	}

	// On a tone G.711 keeps roughly 34-38 dB SNR (its ~5 significant bits).
	tone := sine(8000, 1013, 0.5, 0.5)
	for name, back := range map[string][]int16{"µ-law": DecodeULaw(EncodeULaw(tone)), "A-law": DecodeALaw(EncodeALaw(tone))} {
		var sig, noise float64
		for i := range tone {
			d := float64(back[i]) - float64(tone[i])
			sig += float64(tone[i]) * float64(tone[i])
			noise += d * d
		}
		if snr := 10 * math.Log10(sig/noise); snr < 33 {
			t.Errorf("%s: SNR %.1f dB on a -6 dBFS tone, want >= 33", name, snr)
		}
	}
}
