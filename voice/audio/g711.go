package audio

// G.711 companding per ITU-T Rec. G.711 (11/88), in the bit-exact form of the widely used
// Sun Microsystems reference implementation (g711.c), which is what telephony stacks and
// Twilio's "audio/x-mulaw" expect. µ-law works on the top 14 bits of a 16-bit sample and
// A-law on the top 13; the even-bit inversion of A-law (XOR 0x55) and the all-bit inversion of
// µ-law are applied here, so bytes go on the wire as they are.

const (
	ulawBias = 0x84 // 132: the µ-law bias, added before the segment search
	ulawClip = 8159 // largest 14-bit magnitude µ-law represents
)

// segment end points: ulawSegEnd for the biased 14-bit µ-law magnitude, alawSegEnd for the
// 13-bit A-law magnitude.
var (
	ulawSegEnd = [8]int32{0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF}
	alawSegEnd = [8]int32{0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF}
)

// Decoding tables: every byte value to its 16-bit linear value.
var ulawTable, alawTable = func() (u, a [256]int16) {
	for i := range 256 {
		u[i] = ulawToLinear(byte(i))
		a[i] = alawToLinear(byte(i))
	}
	return u, a
}()

func segment(v int32, ends *[8]int32) int32 {
	for i, end := range ends {
		if v <= end {
			return int32(i)
		}
	}
	return 8
}

// linearToULaw encodes one 16-bit sample to µ-law.
func linearToULaw(s int16) byte {
	v := int32(s) >> 2
	mask := int32(0xFF)
	if v < 0 {
		v = -v
		mask = 0x7F
	}
	if v > ulawClip {
		v = ulawClip
	}
	v += ulawBias >> 2
	seg := segment(v, &ulawSegEnd)
	if seg >= 8 {
		return byte(0x7F ^ mask)
	}
	return byte(((seg << 4) | ((v >> (seg + 1)) & 0x0F)) ^ mask)
}

func ulawToLinear(u byte) int16 {
	u = ^u
	t := (int32(u&0x0F) << 3) + ulawBias
	t <<= (u & 0x70) >> 4
	if u&0x80 != 0 {
		return int16(ulawBias - t)
	}
	return int16(t - ulawBias)
}

// linearToALaw encodes one 16-bit sample to A-law.
func linearToALaw(s int16) byte {
	v := int32(s) >> 3
	mask := int32(0xD5)
	if v < 0 {
		mask = 0x55
		v = -v - 1
	}
	seg := segment(v, &alawSegEnd)
	if seg >= 8 {
		return byte(0x7F ^ mask)
	}
	a := seg << 4
	if seg < 2 {
		a |= (v >> 1) & 0x0F
	} else {
		a |= (v >> seg) & 0x0F
	}
	return byte(a ^ mask)
}

func alawToLinear(a byte) int16 {
	a ^= 0x55
	t := int32(a&0x0F) << 4
	seg := (a & 0x70) >> 4
	switch seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}

// EncodeULaw compands PCM16 samples to G.711 µ-law, one byte per sample. The rate is not
// changed: G.711 on the wire is 8 kHz, so resample first (Encode does).
func EncodeULaw(s []int16) []byte {
	out := make([]byte, len(s))
	for i, v := range s {
		out[i] = linearToULaw(v)
	}
	return out
}

// DecodeULaw expands G.711 µ-law bytes to PCM16.
func DecodeULaw(b []byte) []int16 {
	out := make([]int16, len(b))
	for i, v := range b {
		out[i] = ulawTable[v]
	}
	return out
}

// EncodeALaw compands PCM16 samples to G.711 A-law, one byte per sample.
func EncodeALaw(s []int16) []byte {
	out := make([]byte, len(s))
	for i, v := range s {
		out[i] = linearToALaw(v)
	}
	return out
}

// DecodeALaw expands G.711 A-law bytes to PCM16.
func DecodeALaw(b []byte) []int16 {
	out := make([]int16, len(b))
	for i, v := range b {
		out[i] = alawTable[v]
	}
	return out
}
