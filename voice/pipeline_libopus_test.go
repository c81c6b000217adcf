//go:build libopus

package voice

import (
	"testing"

	"github.com/dartmouth-gw/dartmouth/voice/audio"
)

// TestPipelineOpusOutput: with the libopus encoder built in, reply audio goes out as one Opus
// packet per 20 ms frame, which a decoder turns back into 20 ms of the tone.
func TestPipelineOpusOutput(t *testing.T) {
	for _, rate := range []int{48000, 24000, 16000} {
		h := pipeStart(t, PipelineConfig{OutputFormat: FormatOpus, OutputSampleRate: rate})
		if err := h.p.PushText("hi"); err != nil {
			t.Fatal(err)
		}
		s := pipeSort(h.untilEnd(1))
		if want := pipeFrames("It is ten past three.") + pipeFrames("Anything else?"); len(s.audio) != want {
			t.Fatalf("%d Hz: %d packets, want %d", rate, len(s.audio), want)
		}
		dec, err := audio.NewOpusDecoder(rate)
		if err != nil {
			t.Fatal(err)
		}
		if reqs := h.router.TTSRequests(); reqs[0].SampleRate != rate || reqs[0].Format != FormatPCM16 {
			t.Errorf("%d Hz: TTS asked for %s at %d", rate, reqs[0].Format, reqs[0].SampleRate)
		}
		for i, a := range s.audio {
			if a.Format != FormatOpus || a.SampleRate != rate || len(a.Audio) == 0 || len(a.Audio) > 1275 {
				t.Fatalf("%d Hz: packet %d: %d bytes of %s at %d", rate, i, len(a.Audio), a.Format, a.SampleRate)
			}
			pcm, err := dec.Decode(a.Audio)
			if err != nil {
				t.Fatalf("%d Hz: packet %d: %v", rate, i, err)
			}
			if len(pcm) != rate/50 {
				t.Fatalf("%d Hz: packet %d decodes to %d samples, want %d", rate, i, len(pcm), rate/50)
			}
		}
	}
}
