//go:build !libopus

package audio

import (
	"errors"
	"strings"
	"testing"
)

// Without the libopus tag there is no encoder, and callers must be told so plainly.
func TestOpusEncoderNeedsLibopus(t *testing.T) {
	if OpusEncoderAvailable {
		t.Fatal("OpusEncoderAvailable is true in a build without the libopus tag")
	}
	enc, err := NewOpusEncoder(48000)
	if !errors.Is(err, ErrUnsupportedFormat) || enc != nil {
		t.Fatalf("NewOpusEncoder = %v, %v; want nil and ErrUnsupportedFormat", enc, err)
	}
	if !strings.Contains(err.Error(), "-tags libopus") {
		t.Errorf("error %q does not say how to get an encoder", err)
	}
	// A bad configuration is still reported as such, not as a missing library.
	if _, err := NewOpusEncoderWithConfig(OpusEncoderConfig{Rate: 44100}); err == nil || !strings.Contains(err.Error(), "44100") {
		t.Errorf("bad rate: err = %v", err)
	}
	var zero OpusEncoder
	if _, err := zero.Encode(make([]int16, 960)); !errors.Is(err, ErrUnsupportedFormat) {
		t.Errorf("Encode: err = %v, want ErrUnsupportedFormat", err)
	}
}
