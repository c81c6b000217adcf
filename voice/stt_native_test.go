package voice

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/voice/audio"
)

// sttTone is a second of a 440 Hz-ish square wave at rate: real, decodable audio whose length is
// known exactly.
func sttTone(rate int, d time.Duration) audio.PCM {
	n := int(int64(rate) * int64(d) / int64(time.Second))
	s := make([]int16, n)
	period := rate / 440
	for i := range s {
		if (i/(period/2))%2 == 0 {
			s[i] = 8000
		} else {
			s[i] = -8000
		}
	}
	return audio.PCM{Samples: s, Rate: rate}
}

func TestSTTNativeTranscribe(t *testing.T) {
	wav := audio.EncodeWAV(sttTone(16000, 1500*time.Millisecond))
	cases := []struct {
		name     string
		req      TranscribeRequest
		want     string
		wantDur  time.Duration
		wantLang string
		wantErr  error
	}{
		{name: "trimmed", req: TranscribeRequest{Transcript: "  remind me to call mom \n"}, want: "remind me to call mom"},
		{name: "language passes through", req: TranscribeRequest{Transcript: "bonjour", Language: "fr"}, want: "bonjour", wantLang: "fr"},
		{name: "duration from wav", req: TranscribeRequest{Transcript: "hi", Audio: wav, Format: FormatWAV}, want: "hi", wantDur: 1500 * time.Millisecond},
		{name: "duration from raw pcm16", req: TranscribeRequest{Transcript: "hi", Audio: audio.PCM16ToBytes(sttTone(8000, time.Second).Samples), Format: FormatPCM16, SampleRate: 8000}, want: "hi", wantDur: time.Second},
		{name: "undecodable audio still passes the transcript", req: TranscribeRequest{Transcript: "hi", Audio: []byte("not audio at all"), Format: FormatWAV}, want: "hi"},
		{name: "empty", req: TranscribeRequest{Audio: wav, Format: FormatWAV}, wantErr: ErrNoTranscript},
		{name: "blank", req: TranscribeRequest{Transcript: " \t\n "}, wantErr: ErrNoTranscript},
	}
	n := NewNativeSTT(NativeSTTConfig{})
	if n.Name() != "native" || n.Tier() != TierNative {
		t.Fatalf("Name, Tier = %q, %q; want native, native", n.Name(), n.Tier())
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := n.Transcribe(context.Background(), tc.req)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Text != tc.want || got.Duration != tc.wantDur || got.Language != tc.wantLang || got.Provider != "native" {
				t.Fatalf("got %+v, want text %q duration %v language %q provider native", got, tc.want, tc.wantDur, tc.wantLang)
			}
		})
	}
}

func TestSTTNativeCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := NewNativeSTT(NativeSTTConfig{Name: "device"}).Transcribe(ctx, TranscribeRequest{Transcript: "hi"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
