package voice

import (
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/dartmouth-gw/dartmouth/voice/audio"
)

// The VAD tells speech from silence in a stream of PCM16, 20 ms frame by 20 ms frame, the way
// a server-side turn detector must: it decides from the audio alone, deterministically, with no
// goroutine and no clock (positions are audio time, counted in samples).
//
// A frame is speech-like when its level (RMS, dBFS) is ThresholdDB above the noise floor and
// above MinLevelDB, and, to start an utterance, when its spectrum is not flat (MaxFlatness):
// voiced speech is a comb of harmonics, while fans, hiss and clicks spread their energy over
// every frequency. Speech starts after MinSpeech of consecutive speech-like frames, so a cough,
// a click or a door shorter than that never starts a turn nor interrupts a reply; the
// utterance then reaches back PrefixPadding before the first speech frame, so the onset that
// was still being confirmed (and a soft first consonant) reaches the recogniser. Speech stops
// after SilenceDuration without a frame above the threshold; the utterance keeps SuffixPadding
// of that silence.
//
// The noise floor follows the room: it drops at once to a quieter frame and rises by at most
// FloorRiseDBPerSecond, so speech (which always has quieter gaps between syllables) cannot
// lift it to its own level, while a lasting change of background (a fan turned on) is learnt
// within seconds instead of keeping the VAD in "speech" for ever. Its first value is the first
// frame's level: a session is assumed to start before the user speaks (if not, the first
// syllable gap corrects it).

// FrameDuration is the frame the VAD decides on and the pipeline sends audio in.
const FrameDuration = 20 * time.Millisecond

// VADConfig configures a VAD. Every zero field takes its default.
type VADConfig struct {
	// SampleRate of the PCM fed to Process, in Hz; a multiple of 50 (whole 20 ms frames)
	// within audio.MinRate..audio.MaxRate. Default 16000.
	SampleRate int
	// ThresholdDB is how far above the noise floor a frame's level must be to count as
	// speech. Higher is less sensitive. Default 12 dB.
	ThresholdDB float64
	// MinLevelDB is the quietest level (RMS, dBFS) that can count as speech whatever the
	// noise floor, so digital silence with a faint hiss is not speech. Default -50 dBFS.
	MinLevelDB float64
	// MaxFlatness is the spectral flatness (0 for a pure tone, about 0.56 for white noise,
	// measured over 100-4000 Hz) above which a frame cannot start speech. It does not end
	// speech: unvoiced sounds inside words are flat too. Set 1 to turn the check off.
	// Default 0.45.
	MaxFlatness float64
	// FloorRiseDBPerSecond is how fast the noise floor may rise. Default 3 dB/s.
	FloorRiseDBPerSecond float64
	// PrefixPadding is the audio kept before the first speech frame (OpenAI's
	// prefix_padding_ms). Default 300 ms.
	PrefixPadding time.Duration
	// MinSpeech is how long speech must last before it is declared: shorter sounds never
	// start an utterance (nor interrupt a reply). Default 120 ms.
	MinSpeech time.Duration
	// SilenceDuration is the silence that ends an utterance (OpenAI's silence_duration_ms).
	// Default 500 ms.
	SilenceDuration time.Duration
	// SuffixPadding is the silence kept after the last speech frame, at most
	// SilenceDuration. Default 200 ms.
	SuffixPadding time.Duration
	// MaxUtterance ends an utterance that goes on this long (a monologue, or a noise the
	// floor has not learnt yet), bounding memory and STT uploads; speech that continues starts
	// a new one. Default 30 s.
	MaxUtterance time.Duration
}

func (c VADConfig) withDefaults() (VADConfig, error) {
	if c.SampleRate == 0 {
		c.SampleRate = 16000
	}
	if c.SampleRate < audio.MinRate || c.SampleRate > audio.MaxRate || c.SampleRate%50 != 0 {
		return c, fmt.Errorf("vad: sample rate %d Hz: want a multiple of 50 within %d..%d", c.SampleRate, audio.MinRate, audio.MaxRate)
	}
	def := func(v *time.Duration, d time.Duration, name string) error {
		if *v < 0 {
			return fmt.Errorf("vad: %s %s is negative", name, *v)
		}
		if *v == 0 {
			*v = d
		}
		return nil
	}
	for _, f := range []struct {
		v    *time.Duration
		d    time.Duration
		name string
	}{
		{&c.PrefixPadding, 300 * time.Millisecond, "prefix padding"},
		{&c.MinSpeech, 120 * time.Millisecond, "minimum speech"},
		{&c.SilenceDuration, 500 * time.Millisecond, "silence duration"},
		{&c.SuffixPadding, 200 * time.Millisecond, "suffix padding"},
		{&c.MaxUtterance, 30 * time.Second, "maximum utterance"},
	} {
		if err := def(f.v, f.d, f.name); err != nil {
			return c, err
		}
	}
	c.SuffixPadding = min(c.SuffixPadding, c.SilenceDuration)
	if c.ThresholdDB == 0 {
		c.ThresholdDB = 12
	}
	if c.MinLevelDB == 0 {
		c.MinLevelDB = -50
	}
	if c.MaxFlatness == 0 {
		c.MaxFlatness = 0.45
	}
	if c.FloorRiseDBPerSecond == 0 {
		c.FloorRiseDBPerSecond = 3
	}
	switch {
	case c.ThresholdDB < 0 || math.IsNaN(c.ThresholdDB):
		return c, fmt.Errorf("vad: threshold %v dB: want a positive margin over the noise floor", c.ThresholdDB)
	case c.MinLevelDB > 0 || math.IsNaN(c.MinLevelDB):
		return c, fmt.Errorf("vad: minimum level %v dBFS: want a level below 0 dBFS", c.MinLevelDB)
	case c.MaxFlatness < 0 || c.MaxFlatness > 1 || math.IsNaN(c.MaxFlatness):
		return c, fmt.Errorf("vad: maximum flatness %v: want 0..1", c.MaxFlatness)
	case c.FloorRiseDBPerSecond < 0 || math.IsNaN(c.FloorRiseDBPerSecond):
		return c, fmt.Errorf("vad: floor rise %v dB/s is negative", c.FloorRiseDBPerSecond)
	case c.MaxUtterance < c.MinSpeech+c.SilenceDuration:
		return c, fmt.Errorf("vad: maximum utterance %s is shorter than minimum speech plus silence duration", c.MaxUtterance)
	}
	return c, nil
}

// VADEventType says what a VADEvent reports.
type VADEventType int

// VAD events.
const (
	VADSpeechStarted VADEventType = iota + 1
	VADSpeechStopped
)

func (t VADEventType) String() string {
	switch t {
	case VADSpeechStarted:
		return "speech_started"
	case VADSpeechStopped:
		return "speech_stopped"
	}
	return fmt.Sprintf("VADEventType(%d)", int(t))
}

// VADEvent is a change between silence and speech. Positions are audio time since the first
// sample the VAD was fed (or since Reset).
type VADEvent struct {
	Type VADEventType
	// At is where the change happened: the start of the first speech frame (started), or the
	// end of the last one (stopped).
	At time.Duration
	// AudioStart is the position of the utterance's first sample, PrefixPadding before the
	// first speech frame when that much audio was available.
	AudioStart time.Duration
	// Audio is the utterance, on VADSpeechStopped only: from AudioStart to SuffixPadding after
	// the last speech frame (less when Flush or MaxUtterance ended it). The caller owns it.
	Audio []int16
	// Forced is set on a stop that silence did not cause: MaxUtterance or Flush.
	Forced bool
}

// VAD is an energy and spectral-flatness voice activity detector over PCM16 (see the comment
// at the top of vad.go). It is not safe for concurrent use: feed it from one goroutine.
type VAD struct {
	cfg       VADConfig
	frameLen  int     // samples per 20 ms frame
	prefixLen int     // samples of pre-roll
	suffixLen int     // samples of trailing silence kept
	minFrames int     // speech frames that declare speech
	silFrames int     // silent frames that end it
	maxLen    int     // samples of the longest utterance
	rise      float64 // dB the floor may rise per frame
	fft       *vadFFT

	pending []int16 // a partial frame waiting for the rest
	pos     int64   // samples fed, in whole frames processed

	floor    float64
	hasFloor bool

	// Idle state: the recent audio (for the pre-roll) and the run of speech-like frames.
	history  []int16
	run      int   // consecutive speech-like frames
	lastEnd  int64 // position where the previous utterance ended: the pre-roll never reaches back past it
	speaking bool
	// Speaking state.
	utt      []int16
	uttStart int64
	speechTo int64 // end of the last speech frame
	silent   int   // consecutive silent frames
}

// NewVAD checks the config and returns a VAD.
func NewVAD(cfg VADConfig) (*VAD, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	samples := func(d time.Duration) int { return int(int64(d) * int64(cfg.SampleRate) / int64(time.Second)) }
	frameLen := cfg.SampleRate / 50
	ceilFrames := func(d time.Duration) int { return max(1, int((d+FrameDuration-1)/FrameDuration)) }
	v := &VAD{
		cfg:       cfg,
		frameLen:  frameLen,
		prefixLen: samples(cfg.PrefixPadding),
		suffixLen: samples(cfg.SuffixPadding),
		minFrames: ceilFrames(cfg.MinSpeech),
		silFrames: ceilFrames(cfg.SilenceDuration),
		maxLen:    samples(cfg.MaxUtterance),
		rise:      cfg.FloorRiseDBPerSecond * FrameDuration.Seconds(),
		fft:       newVADFFT(frameLen, cfg.SampleRate),
	}
	return v, nil
}

// Config returns the configuration with its defaults filled in.
func (v *VAD) Config() VADConfig { return v.cfg }

// FrameSamples is the number of samples in one 20 ms frame.
func (v *VAD) FrameSamples() int { return v.frameLen }

// Speaking reports whether the VAD is inside an utterance.
func (v *VAD) Speaking() bool { return v.speaking }

// NoiseFloor is the current noise floor in dBFS (-100 before the first frame).
func (v *VAD) NoiseFloor() float64 {
	if !v.hasFloor {
		return vadSilenceDB
	}
	return v.floor
}

// Position is the audio time processed so far (a partial frame waiting in Process is not).
func (v *VAD) Position() time.Duration { return v.dur(v.pos) }

// Reset forgets the stream: the next sample is position 0 and the noise floor is learnt again.
func (v *VAD) Reset() {
	fft := v.fft
	*v = VAD{cfg: v.cfg, frameLen: v.frameLen, prefixLen: v.prefixLen, suffixLen: v.suffixLen,
		minFrames: v.minFrames, silFrames: v.silFrames, maxLen: v.maxLen, rise: v.rise, fft: fft}
}

// Process feeds samples of any length (they need not be whole frames: a partial frame waits
// for the rest) and returns the events they caused, in order.
func (v *VAD) Process(samples []int16) []VADEvent {
	var events []VADEvent
	if len(v.pending) > 0 {
		need := v.frameLen - len(v.pending)
		if len(samples) < need {
			v.pending = append(v.pending, samples...)
			return nil
		}
		v.pending = append(v.pending, samples[:need]...)
		samples = samples[need:]
		events = v.frame(v.pending, events)
		v.pending = v.pending[:0]
	}
	for len(samples) >= v.frameLen {
		events = v.frame(samples[:v.frameLen], events)
		samples = samples[v.frameLen:]
	}
	v.pending = append(v.pending, samples...)
	return events
}

// Flush ends the stream as it stands (the client stopped sending: push-to-talk released): an
// utterance in progress stops now, with the partial frame fed so far, as a Forced
// VADSpeechStopped. Without one it returns nil, and an onset still being confirmed is
// forgotten. The noise floor is kept.
func (v *VAD) Flush() []VADEvent {
	tail := v.pending
	v.pending = v.pending[:0]
	v.pos += int64(len(tail))
	if !v.speaking {
		v.keepHistory(tail)
		v.run = 0
		return nil
	}
	v.utt = append(v.utt, tail...)
	// Everything fed counts: the speaker was cut off, not silent.
	return []VADEvent{v.stop(v.pos, true)}
}

const vadSilenceDB = -100

// level is a frame's RMS in dBFS, at least vadSilenceDB.
func vadLevel(frame []int16) float64 {
	var sum float64
	for _, s := range frame {
		f := float64(s)
		sum += f * f
	}
	if sum == 0 {
		return vadSilenceDB
	}
	db := 10 * math.Log10(sum/float64(len(frame))/(32768*32768))
	return max(db, vadSilenceDB)
}

func (v *VAD) dur(samples int64) time.Duration {
	return time.Duration(samples * int64(time.Second) / int64(v.cfg.SampleRate))
}

func (v *VAD) frame(frame []int16, events []VADEvent) []VADEvent {
	level := vadLevel(frame)
	v.pos += int64(len(frame))
	loud := level >= max(v.floor+v.cfg.ThresholdDB, v.cfg.MinLevelDB) || (!v.hasFloor && level >= v.cfg.MinLevelDB)
	v.track(level)

	if v.speaking {
		v.utt = append(v.utt, frame...)
		if loud {
			v.silent = 0
			v.speechTo = v.pos
		} else {
			v.silent++
		}
		switch {
		case v.silent >= v.silFrames:
			events = append(events, v.stop(v.speechTo+int64(v.suffixLen), false))
		case len(v.utt) >= v.maxLen:
			events = append(events, v.stop(v.pos, true))
		}
		if !v.speaking {
			v.keepHistory(nil)
		}
		return events
	}

	v.keepHistory(frame)
	if loud && (v.cfg.MaxFlatness >= 1 || v.fft.flatness(frame) <= v.cfg.MaxFlatness) {
		v.run++
	} else {
		v.run = 0
	}
	if v.run < v.minFrames {
		return events
	}
	// Onset: the run's first frame is where speech began.
	first := v.pos - int64(v.run*v.frameLen)
	from := max(first-int64(v.prefixLen), v.lastEnd, v.pos-int64(len(v.history)))
	v.speaking, v.silent, v.run = true, 0, 0
	v.uttStart, v.speechTo = from, v.pos
	v.utt = append(make([]int16, 0, len(v.history)+v.frameLen*50), v.history[len(v.history)-int(v.pos-from):]...)
	v.history = v.history[:0]
	return append(events, VADEvent{Type: VADSpeechStarted, At: v.dur(first), AudioStart: v.dur(from)})
}

// track moves the noise floor with a frame's level.
func (v *VAD) track(level float64) {
	lowest := v.cfg.MinLevelDB - v.cfg.ThresholdDB // lower changes nothing but the recovery time
	level = max(level, lowest)
	switch {
	case !v.hasFloor:
		v.floor, v.hasFloor = level, true
	case level < v.floor:
		v.floor = level
	default:
		v.floor = min(level, v.floor+v.rise)
	}
}

// keepHistory appends frame to the idle history, which holds what a pre-roll can reach back
// to: PrefixPadding plus the run that confirms an onset.
func (v *VAD) keepHistory(frame []int16) {
	v.history = append(v.history, frame...)
	keep := v.prefixLen + (v.minFrames+1)*v.frameLen
	if over := len(v.history) - keep; over > 0 {
		n := copy(v.history, v.history[over:])
		v.history = v.history[:n]
	}
}

// stop ends the utterance at position end (clamped to what was fed).
func (v *VAD) stop(end int64, forced bool) VADEvent {
	end = min(end, v.uttStart+int64(len(v.utt)))
	ev := VADEvent{Type: VADSpeechStopped, At: v.dur(v.speechTo), AudioStart: v.dur(v.uttStart),
		Audio: v.utt[:end-v.uttStart], Forced: forced}
	if forced {
		ev.At = v.dur(end)
	}
	// The audio after the utterance's end (the rest of the silence) seeds the next pre-roll.
	rest := v.utt[end-v.uttStart:]
	v.history = append(v.history[:0], rest...)
	v.utt = nil
	v.speaking, v.silent, v.run = false, 0, 0
	v.lastEnd = end
	return ev
}

// vadFFT measures spectral flatness with a Hann-windowed radix-2 FFT over one frame.
type vadFFT struct {
	n        int
	window   []float64
	cos, sin []float64 // twiddles for n
	rev      []int
	lo, hi   int // bins of 100 Hz and min(4000 Hz, 0.45 rate)
	re, im   []float64
}

func newVADFFT(frameLen, rate int) *vadFFT {
	n := 1 << bits.Len(uint(frameLen-1))
	f := &vadFFT{n: n, window: make([]float64, frameLen), cos: make([]float64, n/2), sin: make([]float64, n/2),
		rev: make([]int, n), re: make([]float64, n), im: make([]float64, n)}
	for i := range f.window {
		f.window[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(frameLen-1))
	}
	for i := range f.cos {
		f.cos[i] = math.Cos(2 * math.Pi * float64(i) / float64(n))
		f.sin[i] = -math.Sin(2 * math.Pi * float64(i) / float64(n))
	}
	shift := bits.UintSize - bits.Len(uint(n-1))
	for i := range f.rev {
		f.rev[i] = int(bits.Reverse(uint(i)) >> shift)
	}
	binHz := float64(rate) / float64(n)
	f.lo = max(1, int(math.Ceil(100/binHz)))
	f.hi = min(n/2-1, int(math.Floor(min(4000, 0.45*float64(rate))/binHz)))
	return f
}

// flatness is the geometric over the arithmetic mean of the frame's power spectrum between
// 100 and 4000 Hz: near 0 for harmonic sound, about 0.56 for white noise.
func (f *vadFFT) flatness(frame []int16) float64 {
	clear(f.re)
	clear(f.im)
	for i, s := range frame {
		f.re[f.rev[i]] = float64(s) / 32768 * f.window[i]
	}
	for size := 2; size <= f.n; size <<= 1 {
		half, step := size/2, f.n/size
		for start := 0; start < f.n; start += size {
			for k := range half {
				wr, wi := f.cos[k*step], f.sin[k*step]
				a, b := start+k, start+k+half
				tr := wr*f.re[b] - wi*f.im[b]
				ti := wr*f.im[b] + wi*f.re[b]
				f.re[b], f.im[b] = f.re[a]-tr, f.im[a]-ti
				f.re[a], f.im[a] = f.re[a]+tr, f.im[a]+ti
			}
		}
	}
	const eps = 1e-12
	var logSum, sum float64
	for k := f.lo; k <= f.hi; k++ {
		p := f.re[k]*f.re[k] + f.im[k]*f.im[k] + eps
		logSum += math.Log(p)
		sum += p
	}
	n := float64(f.hi - f.lo + 1)
	return math.Exp(logSum/n) / (sum / n)
}
