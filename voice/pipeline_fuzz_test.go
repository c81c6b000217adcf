package voice

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/dartmouth-gw/dartmouth/voice/audio"
)

// FuzzPipelinePush feeds arbitrary client frames to a pipeline of every input format: a frame
// is decoded and run through the VAD, or refused with ErrBadAudio, and never crashes it.
func FuzzPipelinePush(f *testing.F) {
	tone := make([]int16, 320)
	for i := range tone {
		tone[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/16000))
	}
	f.Add(uint8(0), audio.PCM16ToBytes(tone))
	f.Add(uint8(0), []byte{1, 2, 3})
	f.Add(uint8(1), audio.EncodeULaw(tone))
	f.Add(uint8(2), audio.EncodeALaw(tone))
	f.Add(uint8(3), []byte{0xFC, 0xFF, 0xFE}) // an Opus packet's TOC and a few bytes
	f.Add(uint8(3), []byte{})
	f.Add(uint8(4), binary.LittleEndian.AppendUint16(nil, 0x8000))
	formats := []struct {
		format string
		rate   int
	}{{FormatPCM16, 16000}, {FormatULaw, 8000}, {FormatALaw, 8000}, {FormatOpus, 0}, {FormatPCM16, 48000}}
	f.Fuzz(func(t *testing.T, which uint8, frame []byte) {
		in := formats[int(which)%len(formats)]
		p, err := NewPipeline(PipelineConfig{Router: &pipeRouter{}, Responder: &pipeResponder{}, InputFormat: in.format, InputSampleRate: in.rate})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		for range 3 { // state carries from frame to frame: the resampler, the Opus decoder, the VAD
			if err := p.Push(frame); err != nil && !errors.Is(err, ErrBadAudio) {
				t.Fatalf("Push(%s, %d bytes): %v, want nil or ErrBadAudio", in.format, len(frame), err)
			}
		}
		p.Commit()
	})
}
