package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/hajimehoshi/go-mp3"
)

// mp3DecoderDelay is the delay of the standard MP3 synthesis filter bank, in samples: what
// gapless decoders (LAME's own, ffmpeg) add to the encoder delay of the LAME tag.
const mp3DecoderDelay = 528 + 1

// DecodeMP3 decodes an MPEG-1/2/2.5 Layer III stream (an ID3v2 tag in front is skipped) to
// mono PCM16 at the stream's rate, averaging stereo channels. It uses the pure-Go
// github.com/hajimehoshi/go-mp3.
//
// When the first frame is a Xing/Info frame it is dropped (it carries no audio), and when it
// holds a LAME tag the encoder delay and padding it records are trimmed as LAME and ffmpeg
// do, so the output has exactly the samples that were encoded (gapless). Without the tag the
// output starts with the encoder's ~50 ms of delay and ends on a frame boundary.
//
// Errors: ErrEmpty, ErrTooLarge (over MaxDecodeBytes or MaxDecodeDuration), ErrMislabelled
// (the bytes are WAV, Ogg, WebM or FLAC), ErrTruncated (an MP3 cut off before its first whole
// frame), ErrUnsupportedFormat (no MPEG audio frame found, or a stream the decoder rejects).
//
// Known limits of go-mp3 v0.3.4, the latest release, both refused with ErrUnsupportedFormat
// rather than decoded wrong:
//   - MPEG-2.5 (8, 11.025 and 12 kHz MP3s) is not implemented.
//   - MPEG-2 at 22.05 kHz with padded frames at 8, 16, 24, 32, 80, 96, 144 or 160 kbps:
//     go-mp3 computes such frames one byte short ((144*bitrate/rate + padding) >> 1 instead
//     of 72*bitrate/rate + padding), which shifts the bit reservoir and turns the rest of the
//     stream into loud noise. This includes ElevenLabs' mp3_22050_32; ask that provider for
//     pcm_22050, pcm_16000 or mp3_44100_* instead. 16 and 24 kHz MPEG-2 never pad, and
//     MPEG-1 (32/44.1/48 kHz) sizes correctly, so those decode (OpenAI's 24 kHz MP3 included).
func DecodeMP3(b []byte) (pcm PCM, err error) {
	if err := checkInput("mp3", b); err != nil {
		return PCM{}, err
	}
	if got := strongMagic(b); got != "" && got != FormatMP3 {
		return PCM{}, fmt.Errorf("%w: labelled mp3 but the bytes are %s", ErrMislabelled, got)
	}
	if err := checkGoMP3FrameSizes(b); err != nil {
		return PCM{}, err
	}
	// go-mp3 indexes slices with values read from the stream; untrusted input must not be
	// able to crash the gateway, so a panic in it becomes an error.
	defer func() {
		if r := recover(); r != nil {
			pcm, err = PCM{}, fmt.Errorf("%w: mp3: malformed stream (decoder failed: %v)", ErrUnsupportedFormat, r)
		}
	}()

	d, err := mp3.NewDecoder(bytes.NewReader(b))
	if err != nil {
		return PCM{}, mp3Error(b, err)
	}
	rate := d.SampleRate()
	frames := int64(0)
	if l := d.Length(); l > 0 {
		frames = l / 4 // go-mp3 always yields 16-bit stereo
	}
	if err := checkDuration("mp3", frames, rate); err != nil {
		return PCM{}, err
	}
	limit := int64(MaxDecodeDuration.Seconds()) * int64(rate)

	out := make([]int16, 0, frames)
	buf := make([]byte, 4*1152*8)
	for {
		n, rerr := d.Read(buf)
		for i := 0; i+4 <= n; i += 4 {
			l := int32(int16(binary.LittleEndian.Uint16(buf[i:])))
			r := int32(int16(binary.LittleEndian.Uint16(buf[i+2:])))
			out = append(out, int16((l+r)>>1))
		}
		if int64(len(out)) > limit {
			return PCM{}, checkDuration("mp3", int64(len(out)), rate)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if len(out) == 0 {
				return PCM{}, mp3Error(b, rerr)
			}
			break // keep what decoded before a corrupt tail, as players do
		}
	}
	out = trimGapless(out, parseGapless(b))
	return PCM{Samples: out, Rate: rate}, nil
}

// mp3Error classifies a go-mp3 failure: bytes that start like MP3 but end early are
// truncated, anything else is not MP3 this decoder reads.
func mp3Error(b []byte, err error) error {
	if Detect(b) == FormatMP3 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		return fmt.Errorf("%w: mp3: stream ends before its first whole frame", ErrTruncated)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: mp3: no MPEG audio frame found", ErrUnsupportedFormat)
	}
	return fmt.Errorf("%w: mp3: %v", ErrUnsupportedFormat, err)
}

// gapless is what the Xing/Info frame and its LAME tag say about the stream.
type gapless struct {
	infoFrame       bool // the first frame is a Xing/Info frame, not audio
	samplesPerFrame int
	frames          int // audio frames after the info frame; 0 if not recorded
	lame            bool
	delay, padding  int // encoder delay and padding from the LAME tag, in samples
}

// parseGapless reads the Xing/Info frame and LAME tag if the stream's first frame is one.
// Layout: http://gabriel.mp3-tech.org/mp3infotag.html.
func parseGapless(b []byte) gapless {
	off := id3v2Size(b)
	if off >= len(b) {
		return gapless{}
	}
	n, h, ok := mp3FrameLen(b[off:])
	if !ok || off+n > len(b) {
		return gapless{}
	}
	frame := b[off : off+n]
	mono := frame[3]>>6 == 3
	side := 32
	switch {
	case h.version == 3 && mono:
		side = 17
	case h.version != 3 && mono:
		side = 9
	case h.version != 3:
		side = 17
	}
	x := 4 + side
	if frame[1]&1 == 0 { // CRC follows the header
		x += 2
	}
	if len(frame) < x+8 || (string(frame[x:x+4]) != "Xing" && string(frame[x:x+4]) != "Info") {
		return gapless{}
	}
	g := gapless{infoFrame: true, samplesPerFrame: h.samplesPerFrame()}
	flags := binary.BigEndian.Uint32(frame[x+4:])
	p := x + 8
	if flags&1 != 0 && len(frame) >= p+4 {
		g.frames = int(binary.BigEndian.Uint32(frame[p:]))
		p += 4
	}
	if flags&2 != 0 {
		p += 4 // byte count
	}
	if flags&4 != 0 {
		p += 100 // seek table
	}
	if flags&8 != 0 {
		p += 4 // quality
	}
	if len(frame) < p+24 {
		return g
	}
	switch string(frame[p : p+4]) {
	case "LAME", "Lavf", "Lavc", "GOGO":
		g.lame = true
		g.delay = int(frame[p+21])<<4 | int(frame[p+22])>>4
		g.padding = int(frame[p+22]&0x0F)<<8 | int(frame[p+23])
	}
	return g
}

// trimGapless drops the info frame's silence and, with a LAME tag, the encoder delay and
// padding. Values that do not fit the decoded length are ignored rather than trusted.
func trimGapless(out []int16, g gapless) []int16 {
	if !g.infoFrame {
		return out
	}
	skip := g.samplesPerFrame
	if skip > len(out) {
		return out
	}
	out = out[skip:]
	if !g.lame {
		return out
	}
	start := g.delay + mp3DecoderDelay
	if start > len(out) {
		return out
	}
	keep := len(out) - start
	if g.frames > 0 {
		if want := g.frames*g.samplesPerFrame - g.delay - g.padding; want >= 0 && want < keep {
			keep = want
		}
	}
	return out[start : start+keep]
}

// checkGoMP3FrameSizes walks the stream's frame headers and refuses a stream containing a
// frame go-mp3 v0.3.4 would mis-size (see DecodeMP3): decoding it yields noise, and noise
// sent to speech-to-text comes back as confident nonsense.
func checkGoMP3FrameSizes(b []byte) error {
	off := id3v2Size(b)
	for frames := 0; off+4 <= len(b); frames++ {
		n, h, ok := mp3FrameLen(b[off:])
		if !ok || n <= 0 {
			return nil // trailing tag or junk: go-mp3 stops or resyncs there as well
		}
		if h.version == 2 && h.sampleRate == 22050 && (b[off+2]>>1)&1 == 1 {
			br := mp3BitratesV2[b[off+2]>>4] * 1000
			if (144*br/22050)%2 == 0 {
				return fmt.Errorf("%w: mp3: 22.05 kHz MPEG-2 at %d kbps with padded frames is mis-decoded by "+
					"the pure-Go decoder (frame %d); send 16/24/44.1/48 kHz MP3, WAV or PCM instead",
					ErrUnsupportedFormat, br/1000, frames)
			}
		}
		off += n
	}
	return nil
}

// id3v2Size is the length of the ID3v2 tag at the start of b, or 0.
func id3v2Size(b []byte) int {
	if len(b) < 10 || string(b[:3]) != "ID3" {
		return 0
	}
	size := 10 + (int(b[6]&0x7F)<<21 | int(b[7]&0x7F)<<14 | int(b[8]&0x7F)<<7 | int(b[9]&0x7F))
	if b[5]&0x10 != 0 { // footer present
		size += 10
	}
	return size
}
