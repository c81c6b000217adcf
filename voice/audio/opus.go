package audio

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/pion/opus"
	"github.com/pion/opus/pkg/oggreader"
)

// Opus in this package.
//
// Decoding is pure Go (github.com/pion/opus v0.1.0, RFC 6716): SILK, CELT and hybrid packets,
// mono or stereo (stereo is downmixed), 2.5 to 60 ms frames, code 0-3 packets. Measured
// against libopus 1.3.1's own decoder on libopus-encoded input (see opus_libopus_test.go):
//   - CELT-only packets (application "lowdelay", and "audio"/"voip" at high bitrates) decode
//     within rounding of libopus (80-100 dB SNR between the two).
//   - SILK and hybrid packets (application "voip"/"audio" at speech bitrates, what browsers
//     send over WebRTC) decode close to libopus on speech (~47-55 dB SNR between the two:
//     inaudible), but not bit-exactly, and one synthetic signal (two tones, one of them
//     chirping fast) made pion's SILK decoder diverge into noise. Real speech and noise did
//     not; the limitation is stated here so nobody relies on bit-exact SILK.
//   - There is no packet-loss concealment or FEC: a lost packet is simply missing audio.
//
// Encoding needs libopus through cgo and is only built with the `libopus` build tag (see
// OpusEncoder). Its default application is "lowdelay" (CELT-only) precisely because that is
// the mode the pure-Go decoder reproduces exactly; "voip" is available for peers that decode
// with libopus (browsers, apps).

// opusNativeRates are the output rates the Opus decoder produces directly.
var opusNativeRates = map[int]bool{8000: true, 12000: true, 16000: true, 24000: true, 48000: true}

// opusMaxFrameSamples48k is the longest packet Opus allows (120 ms) at 48 kHz.
const opusMaxFrameSamples48k = 5760

// OpusDecoder decodes one stream of Opus packets (as carried in RTP or WebRTC, one packet at a
// time) to mono PCM16 at a chosen rate. It keeps the codec's state between packets, so use
// one per stream, from one goroutine at a time.
type OpusDecoder struct {
	dec  opus.Decoder
	rate int
	// rs converts from 48 kHz when rate is not one Opus decodes to natively (22050, 44100).
	rs  *Resampler
	buf []int16
}

// NewOpusDecoder returns a decoder producing mono PCM16 at rate: 8000, 12000, 16000, 24000
// and 48000 Hz come straight from the codec; any other rate in [MinRate, MaxRate] is decoded
// at 48 kHz and resampled (adding the resampler's few samples of look-ahead delay).
func NewOpusDecoder(rate int) (*OpusDecoder, error) {
	decodeRate := rate
	var rs *Resampler
	if !opusNativeRates[rate] {
		var err error
		if rs, err = NewResampler(48000, rate); err != nil {
			return nil, fmt.Errorf("opus decoder: %w", err)
		}
		decodeRate = 48000
	}
	dec, err := opus.NewDecoderWithOutput(decodeRate, 1)
	if err != nil {
		return nil, fmt.Errorf("%w: opus decoder at %d Hz: %v", ErrUnsupportedFormat, decodeRate, err)
	}
	return &OpusDecoder{dec: dec, rate: rate, rs: rs, buf: make([]int16, opusMaxFrameSamples48k)}, nil
}

// Rate is the output sample rate.
func (d *OpusDecoder) Rate() int { return d.rate }

// Decode decodes one Opus packet (typically 20 ms) and returns its samples, mono, at the
// decoder's rate, in a new slice. An empty packet (a DTX gap or a lost packet) is an error
// wrapping ErrTruncated: there is no loss concealment. A malformed packet is an error wrapping
// ErrUnsupportedFormat; the decoder stays usable for the next packet.
func (d *OpusDecoder) Decode(packet []byte) (samples []int16, err error) {
	if len(packet) == 0 {
		return nil, fmt.Errorf("%w: opus: empty packet (no loss concealment)", ErrTruncated)
	}
	defer func() {
		// The decoder indexes tables with values from the packet; a packet that trips it must
		// cost one packet, not the process.
		if r := recover(); r != nil {
			samples, err = nil, fmt.Errorf("%w: opus: malformed packet (decoder failed: %v)", ErrUnsupportedFormat, r)
		}
	}()
	n, err := d.dec.DecodeToInt16(packet, d.buf)
	if err != nil {
		return nil, fmt.Errorf("%w: opus: cannot decode packet: %v", ErrUnsupportedFormat, err)
	}
	if d.rs != nil {
		return d.rs.Process(d.buf[:n]), nil
	}
	return append([]int16(nil), d.buf[:n]...), nil
}

// Flush returns the samples a resampling decoder (rates other than 8, 12, 16, 24 and 48 kHz)
// still holds back at the end of a stream, and resets it; for native rates it returns nil.
func (d *OpusDecoder) Flush() []int16 {
	if d.rs == nil {
		return nil
	}
	return d.rs.Flush()
}

// DecodeOggOpus decodes an Ogg Opus file (RFC 7845: what OpenAI's and ElevenLabs' "opus"
// output and Firefox's MediaRecorder produce) to mono PCM16 at 48 kHz, the rate Opus always
// decodes at; resample for anything else. The header's pre-skip is dropped and the end is
// trimmed to the last page's granule position, so the duration is the encoded one. Only
// channel mapping family 0 (mono or stereo) is read; surround files fail with
// ErrUnsupportedFormat.
func DecodeOggOpus(b []byte) (PCM, error) {
	if err := checkInput("ogg", b); err != nil {
		return PCM{}, err
	}
	if got := strongMagic(b); got != FormatOgg {
		if got != "" || Detect(b) == FormatMP3 {
			return PCM{}, fmt.Errorf("%w: labelled ogg/opus but the bytes are %s", ErrMislabelled, Detect(b))
		}
		if bytes.HasPrefix([]byte("OggS"), b[:min(len(b), 4)]) {
			return PCM{}, fmt.Errorf("%w: ogg: %d bytes is shorter than an Ogg page header", ErrTruncated, len(b))
		}
		return PCM{}, fmt.Errorf("%w: ogg: no Ogg page signature (raw Opus packets go through OpusDecoder)", ErrUnsupportedFormat)
	}
	r, head, err := oggreader.NewWith(bytes.NewReader(b))
	if err != nil {
		return PCM{}, oggError("reading the Opus header", err)
	}
	if head.ChannelMap != 0 || head.Channels < 1 || head.Channels > 2 {
		return PCM{}, fmt.Errorf("%w: ogg: only mono/stereo Opus (mapping family 0) is supported, got %d channels, family %d",
			ErrUnsupportedFormat, head.Channels, head.ChannelMap)
	}
	dec, err := opus.NewDecoderWithOutput(48000, 1)
	if err != nil {
		return PCM{}, fmt.Errorf("%w: opus: %v", ErrUnsupportedFormat, err)
	}
	limit := int64(MaxDecodeDuration.Seconds()) * 48000
	buf := make([]int16, opusMaxFrameSamples48k)
	var (
		out     []int16
		granule uint64
		tags    bool
	)
	for {
		packet, page, err := r.ParseNextPacket()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return PCM{}, oggError("reading a page", err)
		}
		if !tags && bytes.HasPrefix(packet, []byte("OpusTags")) {
			tags = true
			continue
		}
		if len(packet) == 0 {
			continue
		}
		n, err := decodeOpusPacket(&dec, packet, buf)
		if err != nil {
			return PCM{}, err
		}
		out = append(out, buf[:n]...)
		if int64(len(out)) > limit {
			return PCM{}, checkDuration("ogg", int64(len(out)), 48000)
		}
		if page != nil && page.GranulePosition != ^uint64(0) {
			granule = page.GranulePosition
		}
	}
	skip := min(int(head.PreSkip), len(out))
	out = out[skip:]
	// The last granule position counts pre-skip plus the real samples; trust it only when it
	// trims (it is an end-of-stream trim, never a reason to invent samples).
	if granule > uint64(head.PreSkip) {
		if want := granule - uint64(head.PreSkip); want < uint64(len(out)) {
			out = out[:want]
		}
	}
	return PCM{Samples: out, Rate: 48000}, nil
}

func decodeOpusPacket(dec *opus.Decoder, packet []byte, buf []int16) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, fmt.Errorf("%w: opus: malformed packet (decoder failed: %v)", ErrUnsupportedFormat, r)
		}
	}()
	n, err = dec.DecodeToInt16(packet, buf)
	if err != nil {
		return 0, fmt.Errorf("%w: opus: cannot decode packet: %v", ErrUnsupportedFormat, err)
	}
	return n, nil
}

func oggError(doing string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: ogg: input ends while %s", ErrTruncated, doing)
	}
	return fmt.Errorf("%w: ogg: %s: %v", ErrUnsupportedFormat, doing, err)
}

// OpusEncoderConfig configures an OpusEncoder. The zero value of every field is a usable
// default.
type OpusEncoderConfig struct {
	// Rate is the input sample rate: 8000, 12000, 16000, 24000 or 48000. Required.
	Rate int
	// Application is libopus's mode: "lowdelay" (the default when empty: CELT only, which the
	// pure-Go decoder here reproduces exactly), "voip" (SILK/hybrid, best for speech at low
	// bitrates, for peers that decode with libopus) or "audio".
	Application string
	// Bitrate in bits per second; 0 means 32000, plenty for mono speech.
	Bitrate int
	// Complexity 0-10; 0 means libopus's default (9 in 1.3).
	Complexity int
}

// Opus application names for OpusEncoderConfig.Application.
const (
	OpusApplicationLowDelay = "lowdelay"
	OpusApplicationVoIP     = "voip"
	OpusApplicationAudio    = "audio"
)

const defaultOpusBitrate = 32000

func (c OpusEncoderConfig) validate() (OpusEncoderConfig, error) {
	if !opusNativeRates[c.Rate] {
		return c, fmt.Errorf("%w: opus encoder: rate %d Hz is not one of 8000, 12000, 16000, 24000, 48000", ErrUnsupportedFormat, c.Rate)
	}
	switch c.Application {
	case "":
		c.Application = OpusApplicationLowDelay
	case OpusApplicationLowDelay, OpusApplicationVoIP, OpusApplicationAudio:
	default:
		return c, fmt.Errorf("%w: opus encoder: unknown application %q (lowdelay, voip, audio)", ErrUnsupportedFormat, c.Application)
	}
	if c.Bitrate == 0 {
		c.Bitrate = defaultOpusBitrate
	}
	if c.Bitrate < 6000 || c.Bitrate > 510000 {
		return c, fmt.Errorf("%w: opus encoder: bitrate %d is outside 6000..510000", ErrUnsupportedFormat, c.Bitrate)
	}
	if c.Complexity < 0 || c.Complexity > 10 {
		return c, fmt.Errorf("%w: opus encoder: complexity %d is outside 0..10", ErrUnsupportedFormat, c.Complexity)
	}
	return c, nil
}

// NewOpusEncoder returns an encoder for 20 ms mono frames at rate with the default
// configuration. Without the `libopus` build tag it returns an error wrapping
// ErrUnsupportedFormat.
func NewOpusEncoder(rate int) (*OpusEncoder, error) {
	return NewOpusEncoderWithConfig(OpusEncoderConfig{Rate: rate})
}
