package audio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/pion/opus/pkg/oggreader"
)

// opusFixturePackets returns the Opus packets of testdata/sine440_48000_mono.opus (made with
// opusenc from libopus 1.3.1, 24 kbps: SILK/hybrid/CELT as libopus chose), without the two
// header packets.
func opusFixturePackets(t *testing.T) [][]byte {
	t.Helper()
	r, _, err := oggreader.NewWith(bytes.NewReader(readTestdata(t, "sine440_48000_mono.opus")))
	if err != nil {
		t.Fatal(err)
	}
	var packets [][]byte
	for {
		p, _, err := r.ParseNextPacket()
		if errors.Is(err, io.EOF) {
			return packets
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(p, []byte("OpusTags")) {
			packets = append(packets, p)
		}
	}
}

func TestDecodeOggOpus(t *testing.T) {
	p, err := DecodeOggOpus(readTestdata(t, "sine440_48000_mono.opus"))
	if err != nil {
		t.Fatal(err)
	}
	// Pre-skip dropped and the end trimmed to the granule position: exactly the 1 s encoded.
	if p.Rate != 48000 || len(p.Samples) != 48000 {
		t.Fatalf("%d samples at %d Hz, want 48000 at 48000", len(p.Samples), p.Rate)
	}
	if f := toneFrequency(t, p.Samples, p.Rate); !within(f, 440, 0.005) {
		t.Errorf("tone at %.1f Hz, want 440", f)
	}
	if a := amplitudeAt(p.Samples, p.Rate, 440); !within(a, 0.5, 0.1) {
		t.Errorf("amplitude %.3f, want 0.5", a)
	}
}

func TestOpusDecoderPackets(t *testing.T) {
	packets := opusFixturePackets(t)
	if len(packets) != 51 { // 1 s plus the pre-skip's worth, in 20 ms packets
		t.Fatalf("fixture has %d packets", len(packets))
	}
	for _, rate := range []int{8000, 16000, 24000, 48000, 44100, 22050} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			d, err := NewOpusDecoder(rate)
			if err != nil {
				t.Fatal(err)
			}
			var all []int16
			for i, pkt := range packets {
				s, err := d.Decode(pkt)
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				// Native rates give exactly 20 ms per packet; resampled ones hold back the
				// resampler's look-ahead at first.
				if opusNativeRates[rate] && len(s) != rate/50 {
					t.Fatalf("packet %d: %d samples, want %d (20 ms)", i, len(s), rate/50)
				}
				all = append(all, s...)
			}
			all = append(all, d.Flush()...)
			if want := len(packets) * rate / 50; len(all) != want {
				t.Errorf("%d samples from %d packets of 20 ms, want %d", len(all), len(packets), want)
			}
			if f := toneFrequency(t, all, rate); !within(f, 440, 0.005) {
				t.Errorf("tone at %.1f Hz, want 440", f)
			}
		})
	}
}

func TestOpusDecoderBadInput(t *testing.T) {
	for _, rate := range []int{0, 500, 1000000} {
		if _, err := NewOpusDecoder(rate); !errors.Is(err, ErrUnsupportedFormat) {
			t.Errorf("NewOpusDecoder(%d): err = %v, want ErrUnsupportedFormat", rate, err)
		}
	}
	d, err := NewOpusDecoder(16000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Decode(nil); !errors.Is(err, ErrTruncated) {
		t.Errorf("empty packet: err = %v, want ErrTruncated", err)
	}
	malformed := [][]byte{
		{0x03},       // code 3 without its frame-count byte
		{0x03, 0x00}, // code 3 with zero frames
		{0x02, 0xFF}, // code 2 whose first frame length overruns the packet
		{0x01, 0x00}, // code 1 (two equal frames) with an odd payload
		append([]byte{0x00}, make([]byte, 1300)...), // a frame over 1275 bytes
	}
	for _, pkt := range malformed {
		if _, err := d.Decode(pkt); !errors.Is(err, ErrUnsupportedFormat) {
			t.Errorf("packet % x: err = %v, want ErrUnsupportedFormat", pkt[:min(len(pkt), 3)], err)
		}
	}
	// The decoder is still usable after bad packets.
	for _, pkt := range opusFixturePackets(t)[:5] {
		if s, err := d.Decode(pkt); err != nil || len(s) != 320 {
			t.Fatalf("good packet after bad ones: %d samples, err %v", len(s), err)
		}
	}
}
