package voice

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// vadTone is dur of a tone at freq with peak amp (fraction of full scale), with 5 ms ramps so
// it starts and ends like a voiced sound rather than a click.
func vadTone(rate int, freq float64, dur time.Duration, amp float64) []int16 {
	n := int(int64(dur) * int64(rate) / int64(time.Second))
	ramp := rate / 200
	out := make([]int16, n)
	for i := range out {
		g := 1.0
		if i < ramp {
			g = float64(i) / float64(ramp)
		} else if n-1-i < ramp {
			g = float64(n-1-i) / float64(ramp)
		}
		out[i] = int16(math.Round(amp * g * 32767 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return out
}

// vadNoise is dur of Gaussian white noise with RMS amp (fraction of full scale), reproducible
// from seed.
func vadNoise(rate int, dur time.Duration, amp float64, seed uint64) []int16 {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	n := int(int64(dur) * int64(rate) / int64(time.Second))
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(max(-32768, min(32767, math.Round(r.NormFloat64()*amp*32768))))
	}
	return out
}

// vadMix adds b onto a, starting at sample at.
func vadMix(a, b []int16, at int) []int16 {
	out := slices.Clone(a)
	for i, v := range b {
		out[at+i] = int16(max(-32768, min(32767, int(out[at+i])+int(v))))
	}
	return out
}

// vadSeen is an event and the position (in ms of audio fed) at which it came out.
type vadSeen struct {
	ev      VADEvent
	firedMs int64
}

// vadRun feeds samples in pieces of chunk samples and returns the events.
func vadRun(t *testing.T, v *VAD, samples []int16, chunk int) []vadSeen {
	t.Helper()
	var out []vadSeen
	rate := v.Config().SampleRate
	for fed := 0; fed < len(samples); fed += chunk {
		end := min(fed+chunk, len(samples))
		for _, ev := range v.Process(samples[fed:end]) {
			out = append(out, vadSeen{ev, int64(end) * 1000 / int64(rate)})
		}
	}
	return out
}

func vadNew(t *testing.T, cfg VADConfig) *VAD {
	t.Helper()
	v, err := NewVAD(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func vadMs(d int64) time.Duration { return time.Duration(d) * time.Millisecond }

// TestVADOnsetPrerollAndEnd: a tone burst in low noise starts speech MinSpeech after its first
// frame, the utterance reaches PrefixPadding back (sample for sample what was fed), and speech
// stops SilenceDuration after the burst with SuffixPadding of silence kept.
func TestVADOnsetPrerollAndEnd(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		cfg                      VADConfig
		prefix, minSp, sil, suff int64 // ms, as the VAD should apply them
	}{
		{"defaults", VADConfig{}, 300, 120, 500, 200},
		{"custom", VADConfig{PrefixPadding: 100 * time.Millisecond, MinSpeech: 200 * time.Millisecond,
			SilenceDuration: 300 * time.Millisecond, SuffixPadding: 60 * time.Millisecond}, 100, 200, 300, 60},
		{"suffix capped by silence", VADConfig{SilenceDuration: 200 * time.Millisecond, SuffixPadding: time.Second}, 300, 120, 200, 200},
		{"24 kHz", VADConfig{SampleRate: 24000}, 300, 120, 500, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := vadNew(t, tc.cfg)
			rate := v.Config().SampleRate
			perMs := rate / 1000
			// 1 s of noise at -60 dBFS, 600 ms of tone at about -13 dBFS on it, 1 s more noise.
			sig := vadNoise(rate, 2600*time.Millisecond, 0.001, 1)
			sig = vadMix(sig, vadTone(rate, 300, 600*time.Millisecond, 0.3), 1000*perMs)
			seen := vadRun(t, v, sig, v.FrameSamples())
			if len(seen) != 2 {
				t.Fatalf("events %+v, want started and stopped", seen)
			}
			st, sp := seen[0], seen[1]
			if st.ev.Type != VADSpeechStarted || st.ev.At != vadMs(1000) || st.ev.AudioStart != vadMs(1000-tc.prefix) {
				t.Errorf("started %+v, want at 1s with audio from %dms", st.ev, 1000-tc.prefix)
			}
			if st.firedMs != 1000+tc.minSp {
				t.Errorf("speech declared after %d ms of audio, want %d (MinSpeech after the onset)", st.firedMs, 1000+tc.minSp)
			}
			if sp.ev.Type != VADSpeechStopped || sp.ev.At != vadMs(1600) || sp.ev.Forced {
				t.Errorf("stopped %+v, want at 1.6s, not forced", sp.ev)
			}
			if sp.firedMs != 1600+tc.sil {
				t.Errorf("stop declared after %d ms of audio, want %d", sp.firedMs, 1600+tc.sil)
			}
			from, to := (1000-tc.prefix)*int64(perMs), (1600+tc.suff)*int64(perMs)
			if !slices.Equal(sp.ev.Audio, sig[from:to]) {
				t.Errorf("utterance is %d samples, want samples %d..%d of the input exactly (pre-roll %d ms, suffix %d ms)",
					len(sp.ev.Audio), from, to, tc.prefix, tc.suff)
			}
			if v.Speaking() {
				t.Error("still speaking after the stop")
			}
		})
	}
}

// TestVADShortSoundsIgnored: sounds shorter than MinSpeech (a tone blip, a click, a cough-like
// noise burst) never start speech; one just longer does.
func TestVADShortSoundsIgnored(t *testing.T) {
	const rate = 16000
	click := make([]int16, rate/50)
	click[37], click[38] = 30000, -30000
	for _, tc := range []struct {
		name   string
		sound  []int16
		speech bool
	}{
		{"60 ms tone", vadTone(rate, 300, 60*time.Millisecond, 0.5), false},
		{"100 ms tone", vadTone(rate, 300, 100*time.Millisecond, 0.5), false},
		{"click", click, false},
		{"300 ms of loud white noise", vadNoise(rate, 300*time.Millisecond, 0.2, 7), false},
		{"140 ms tone", vadTone(rate, 300, 140*time.Millisecond, 0.5), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := vadNew(t, VADConfig{})
			sig := vadNoise(rate, 2*time.Second, 0.001, 2)
			sig = vadMix(sig, tc.sound, rate/2)
			seen := vadRun(t, v, sig, v.FrameSamples())
			if got := len(seen) > 0; got != tc.speech {
				t.Fatalf("events %+v, want speech=%v", seen, tc.speech)
			}
		})
	}
}

// TestVADNoiseFloorAdapts: the threshold is relative to the background. A steady hum is not
// speech; a tone 6 dB over it is not either, one 20 dB over it is; when the hum jumps 20 dB the
// VAD may call it speech, but the floor learns it within seconds and ends the utterance.
func TestVADNoiseFloorAdapts(t *testing.T) {
	const rate = 16000
	hum := func(d time.Duration, amp float64) []int16 { return vadTone(rate, 120, d, amp) }
	t.Run("over a hum", func(t *testing.T) {
		v := vadNew(t, VADConfig{})
		sig := hum(4*time.Second, 0.02)                                                 // -37 dBFS: above MinLevelDB, so only the floor decides
		sig = vadMix(sig, vadTone(rate, 400, 500*time.Millisecond, 0.04), 1*rate)       // +6 dB
		sig = vadMix(sig, vadTone(rate, 400, 500*time.Millisecond, 0.2), 2*rate+rate/2) // +20 dB
		seen := vadRun(t, v, sig, v.FrameSamples())
		if len(seen) != 2 || seen[0].ev.At != vadMs(2500) {
			t.Fatalf("events %+v, want only the loud tone at 2.5 s", seen)
		}
		if f := v.NoiseFloor(); f < -45 || f > -35 {
			t.Errorf("noise floor %.1f dBFS, want near the hum's -37", f)
		}
	})
	t.Run("background jumps", func(t *testing.T) {
		v := vadNew(t, VADConfig{})
		sig := append(hum(time.Second, 0.005), hum(12*time.Second, 0.05)...)
		seen := vadRun(t, v, sig, v.FrameSamples())
		if len(seen) != 2 || seen[1].ev.Type != VADSpeechStopped {
			t.Fatalf("events %+v, want the jump taken for speech, then the end of it", seen)
		}
		if at := seen[1].firedMs; at > 6000 {
			t.Errorf("the louder background was learnt after %d ms, want within 5 s of the jump", at)
		}
	})
}

// TestVADReframing: frames need not be whole: odd-sized pieces give the same events as 20 ms
// frames.
func TestVADReframing(t *testing.T) {
	const rate = 16000
	sig := vadNoise(rate, 3*time.Second, 0.001, 3)
	sig = vadMix(sig, vadTone(rate, 250, 700*time.Millisecond, 0.3), rate/2)
	sig = vadMix(sig, vadTone(rate, 250, 400*time.Millisecond, 0.3), 2*rate)
	var want, got []VADEvent
	for _, s := range vadRun(t, vadNew(t, VADConfig{}), sig, rate/50) {
		want = append(want, s.ev)
	}
	for _, s := range vadRun(t, vadNew(t, VADConfig{}), sig, 37) {
		got = append(got, s.ev)
	}
	if len(want) != 4 {
		t.Fatalf("%d events with whole frames, want 4", len(want))
	}
	if len(got) != len(want) {
		t.Fatalf("%d events with 37-sample pieces, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Type != want[i].Type || got[i].At != want[i].At || got[i].AudioStart != want[i].AudioStart ||
			!slices.Equal(got[i].Audio, want[i].Audio) {
			t.Errorf("event %d differs: %v at %v vs %v at %v", i, got[i].Type, got[i].At, want[i].Type, want[i].At)
		}
	}
}

// TestVADForcedStops: MaxUtterance cuts a monologue (and speech that goes on starts again);
// Flush ends an utterance at once with everything fed, and without one does nothing.
func TestVADForcedStops(t *testing.T) {
	const rate = 16000
	t.Run("max utterance", func(t *testing.T) {
		v := vadNew(t, VADConfig{MaxUtterance: time.Second})
		sig := append(vadNoise(rate, 500*time.Millisecond, 0.001, 4), vadTone(rate, 300, 2500*time.Millisecond, 0.3)...)
		seen := vadRun(t, v, sig, rate/50)
		if len(seen) < 3 || seen[1].ev.Type != VADSpeechStopped || !seen[1].ev.Forced || seen[2].ev.Type != VADSpeechStarted {
			t.Fatalf("events %+v, want a forced stop then a new start", seen)
		}
		if n := len(seen[1].ev.Audio); n != rate {
			t.Errorf("cut utterance has %d samples, want 1 s", n)
		}
	})
	t.Run("flush", func(t *testing.T) {
		v := vadNew(t, VADConfig{})
		if evs := v.Flush(); evs != nil {
			t.Fatalf("flush with nothing fed: %+v", evs)
		}
		sig := append(vadNoise(rate, 500*time.Millisecond, 0.001, 5), vadTone(rate, 300, 410*time.Millisecond, 0.3)...)
		seen := vadRun(t, v, sig, 330) // leaves a partial frame pending
		if len(seen) != 1 || seen[0].ev.Type != VADSpeechStarted {
			t.Fatalf("events %+v, want started", seen)
		}
		evs := v.Flush()
		if len(evs) != 1 || evs[0].Type != VADSpeechStopped || !evs[0].Forced || evs[0].At != vadMs(910) {
			t.Fatalf("flush gave %+v, want a forced stop at 910 ms", evs)
		}
		if want := (910 - 200) * rate / 1000; len(evs[0].Audio) != want {
			t.Errorf("flushed utterance has %d samples, want %d (pre-roll and all speech fed)", len(evs[0].Audio), want)
		}
		if v.Speaking() || v.Flush() != nil {
			t.Error("flush did not end the utterance")
		}
	})
	t.Run("reset", func(t *testing.T) {
		v := vadNew(t, VADConfig{})
		vadRun(t, v, vadTone(rate, 300, 300*time.Millisecond, 0.3), rate/50)
		v.Reset()
		if v.Speaking() || v.Position() != 0 || v.NoiseFloor() != vadSilenceDB {
			t.Errorf("after reset: speaking %v, position %v, floor %v", v.Speaking(), v.Position(), v.NoiseFloor())
		}
	})
}

func TestNewVADRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  VADConfig
		want string
	}{
		{VADConfig{SampleRate: 16001}, "multiple of 50"},
		{VADConfig{SampleRate: 500}, "multiple of 50"},
		{VADConfig{PrefixPadding: -time.Millisecond}, "negative"},
		{VADConfig{ThresholdDB: -3}, "threshold"},
		{VADConfig{MinLevelDB: 3}, "minimum level"},
		{VADConfig{MaxFlatness: 1.5}, "flatness"},
		{VADConfig{MaxUtterance: 100 * time.Millisecond}, "maximum utterance"},
	} {
		if _, err := NewVAD(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewVAD(%+v) = %v, want an error about %q", tc.cfg, err, tc.want)
		}
	}
	v := vadNew(t, VADConfig{})
	c := v.Config()
	if c.SampleRate != 16000 || c.PrefixPadding != 300*time.Millisecond || c.MinSpeech != 120*time.Millisecond ||
		c.SilenceDuration != 500*time.Millisecond || c.ThresholdDB != 12 || v.FrameSamples() != 320 {
		t.Errorf("defaults %+v", c)
	}
}

func BenchmarkVADFrame(b *testing.B) {
	const rate = 16000
	sig := vadNoise(rate, time.Second, 0.001, 6)
	sig = vadMix(sig, vadTone(rate, 300, 500*time.Millisecond, 0.3), rate/4)
	v, _ := NewVAD(VADConfig{})
	frames := len(sig) / 320
	b.ResetTimer()
	for i := range b.N {
		f := i % frames
		v.Process(sig[f*320 : (f+1)*320])
	}
}
