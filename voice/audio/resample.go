package audio

import (
	"fmt"
	"math"
	"sync"
)

// Sample rates the resampler accepts. Below MinRate nothing is speech; above MaxRate no
// recorder is; the bounds also cap the filter's size (see newKernel).
const (
	MinRate = 1000
	MaxRate = 384000
)

// Filter design. The resampler is a polyphase windowed-sinc (Kaiser) filter evaluated exactly
// at every output instant: the low-pass cuts at the lower of the two Nyquist frequencies, so
// downsampling does not alias and upsampling does not image.
//
// With zeroCrossings = 32 the window spans 64 input periods of the cut-off, which for a
// Kaiser window with beta 7.857 (80 dB stopband) gives a transition band of about 0.078 of
// the lower rate; it is placed so the stopband begins at the lower Nyquist frequency. The
// passband is flat to ~84% of the lower Nyquist (6.7 kHz when converting to or from 16 kHz),
// and everything from the Nyquist frequency up is at least 80 dB down.
const (
	zeroCrossings = 32
	kaiserBeta    = 7.857 // 0.1102*(80-8.7): 80 dB stopband attenuation
	// transitionFraction is the Kaiser transition width for that window, as a fraction of the
	// lower rate: (80-7.95) / (14.36 * 2*zeroCrossings).
	transitionFraction = (80 - 7.95) / (14.36 * 2 * zeroCrossings)
	// maxPhases and maxKernelFloats bound a kernel's table. Ratios whose exact polyphase
	// table would be bigger (odd rate pairs such as 44100 -> 7999) quantise the output instant
	// to the nearest of `phases` sub-sample positions; at 1024 or more phases the timing error
	// is below 1/2048 sample, more than 70 dB down even at the top of the passband.
	maxPhases       = 1024
	maxKernelFloats = 1 << 20
	// processChunk is how many input samples Process converts at a time, so a whole-buffer Resample
	// holds only a small float window besides its input and output.
	processChunk = 4096
)

// kernel is a read-only polyphase filter bank for one up/down ratio; resamplers share it.
type kernel struct {
	up, down int // output/input rate ratio in lowest terms: out = in * up / down
	phases   int // sub-sample positions tabulated: up when exact, fewer when quantised
	half     int // taps per side; output n reads inputs i-half+1 .. i+half
	taps     int // 2*half
	coef     []float32
}

// commonRates are the rates whose kernels are cached for the life of the process. Kernels for
// other pairs are built per Resampler, so a client choosing odd rates cannot grow the cache.
var commonRates = map[int]bool{8000: true, 11025: true, 12000: true, 16000: true, 22050: true,
	24000: true, 32000: true, 44100: true, 48000: true}

var kernelCache sync.Map // [2]int{up, down} -> *kernel

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func kernelFor(from, to int) *kernel {
	g := gcd(from, to)
	up, down := to/g, from/g
	if !commonRates[from] || !commonRates[to] {
		return newKernel(up, down)
	}
	key := [2]int{up, down}
	if k, ok := kernelCache.Load(key); ok {
		return k.(*kernel)
	}
	k, _ := kernelCache.LoadOrStore(key, newKernel(up, down))
	return k.(*kernel)
}

func newKernel(up, down int) *kernel {
	// c is the cut-off relative to the input Nyquist: 1 when upsampling, to/from when
	// downsampling. fc is the -6 dB point in cycles per input sample.
	c := math.Min(1, float64(up)/float64(down))
	fc := 0.5*c - transitionFraction*c/2
	half := int(math.Ceil(zeroCrossings / c))
	taps := 2 * half
	phases := up
	if phases > maxPhases || phases*taps > maxKernelFloats {
		phases = max(16, min(maxPhases, maxKernelFloats/taps))
	}
	k := &kernel{up: up, down: down, phases: phases, half: half, taps: taps, coef: make([]float32, phases*taps)}
	i0beta := besselI0(kaiserBeta)
	for ph := range phases {
		row := k.coef[ph*taps : (ph+1)*taps]
		frac := float64(ph) / float64(phases)
		var sum float64
		vals := make([]float64, taps)
		for j := range taps {
			// Distance from the output instant (i + frac) to input k = i - half + 1 + j.
			tau := frac + float64(half-1-j)
			x := tau / float64(half)
			if x <= -1 || x >= 1 {
				continue
			}
			w := besselI0(kaiserBeta*math.Sqrt(1-x*x)) / i0beta
			v := 2 * fc * sinc(2*fc*tau) * w
			vals[j] = v
			sum += v
		}
		// Normalise every phase to unity gain at DC, so silence stays silent and a constant
		// stays constant whatever the phase.
		for j, v := range vals {
			row[j] = float32(v / sum)
		}
	}
	return k
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	px := math.Pi * x
	return math.Sin(px) / px
}

// besselI0 is the zeroth-order modified Bessel function of the first kind (power series;
// converges fast for the arguments a Kaiser window uses).
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	q := x * x / 4
	for k := 1; k < 64; k++ {
		term *= q / float64(k*k)
		sum += term
		if term < sum*1e-17 {
			break
		}
	}
	return sum
}

// Resampler converts one stream of mono PCM16 from one rate to another, chunk by chunk, with
// the same filter as Resample: feed it 20 ms frames as they arrive and it returns as many
// output samples as it can compute, holding back `half` input samples of look-ahead (at most
// 4 ms at the rates the gateway uses). Flush at the end of the stream returns the rest. A
// Resampler is not safe for concurrent use; use one per stream.
type Resampler struct {
	from, to int
	k        *kernel
	hist     []float32 // inputs from absolute index base on; the first half are zeros at start
	base     int64     // absolute input index of hist[0]
	next     int64     // absolute index of the next output sample
	total    int64     // input samples received since the start (or the last Flush)
}

// NewResampler returns a Resampler from one rate to another, both in [MinRate, MaxRate].
func NewResampler(from, to int) (*Resampler, error) {
	if from < MinRate || from > MaxRate || to < MinRate || to > MaxRate {
		return nil, fmt.Errorf("%w: resample %d Hz -> %d Hz: rates must be within %d..%d Hz",
			ErrUnsupportedFormat, from, to, MinRate, MaxRate)
	}
	r := &Resampler{from: from, to: to, k: kernelFor(from, to)}
	r.Reset()
	return r, nil
}

// Reset forgets the stream so the Resampler can start a new one.
func (r *Resampler) Reset() {
	r.hist = append(r.hist[:0], make([]float32, r.k.half)...)
	r.base = -int64(r.k.half)
	r.next = 0
	r.total = 0
}

// Latency is the look-ahead the filter holds back, in input samples: output for input
// instant t is produced once input t+Latency has arrived.
func (r *Resampler) Latency() int { return r.k.half }

// Process consumes in and returns the output samples that are now complete. The returned
// slice is new; in is not retained.
func (r *Resampler) Process(in []int16) []int16 {
	out := make([]int16, 0, (len(in)*r.k.up)/r.k.down+1)
	for len(in) > 0 {
		n := min(len(in), processChunk)
		for _, v := range in[:n] {
			r.hist = append(r.hist, float32(v))
		}
		r.total += int64(n)
		in = in[n:]
		out = r.emit(out, -1)
	}
	return out
}

// Flush ends the stream: it returns the remaining output, so that the whole stream gives
// ceil(inputs*to/from) samples (the duration is kept), and resets the Resampler.
func (r *Resampler) Flush() []int16 {
	target := (r.total*int64(r.k.up) + int64(r.k.down) - 1) / int64(r.k.down)
	r.hist = append(r.hist, make([]float32, r.k.half)...) // zeros after the end
	out := r.emit(nil, target)
	r.Reset()
	return out
}

// emit computes outputs while the input they need is present (and, when limit >= 0, while
// fewer than limit outputs have been produced in total), then drops inputs no longer needed.
func (r *Resampler) emit(out []int16, limit int64) []int16 {
	k := r.k
	up, down, half := int64(k.up), int64(k.down), int64(k.half)
	end := r.base + int64(len(r.hist)) // one past the last input present
	for limit < 0 || r.next < limit {
		pos := r.next * down
		i := pos / up
		phase := pos % up
		if k.phases != k.up {
			phase = (phase*int64(k.phases) + up/2) / up
			if phase == int64(k.phases) {
				i, phase = i+1, 0
			}
		}
		if i+half >= end {
			break
		}
		window := r.hist[i-half+1-r.base:]
		row := k.coef[int(phase)*k.taps : int(phase+1)*k.taps]
		window = window[:len(row)]
		var acc float32
		for j, c := range row {
			acc += c * window[j]
		}
		out = append(out, clampRound(acc))
		r.next++
	}
	// Inputs before the next output's first tap are never read again.
	// (A quantised phase only ever rounds the input index up, so the floor is safe.)
	firstNeeded := (r.next*down)/up - half + 1
	if drop := firstNeeded - r.base; drop > 0 {
		drop = min(drop, int64(len(r.hist)))
		n := copy(r.hist, r.hist[drop:])
		r.hist = r.hist[:n]
		r.base += drop
	}
	return out
}

func clampRound(v float32) int16 {
	switch {
	case v >= math.MaxInt16:
		return math.MaxInt16
	case v <= math.MinInt16:
		return math.MinInt16
	case v >= 0:
		return int16(v + 0.5)
	default:
		return int16(v - 0.5)
	}
}

// Resample converts p to rate with the windowed-sinc filter described above, keeping the
// duration (the output has ceil(len*rate/p.Rate) samples) and the pitch. When the rates are
// equal, or either is outside [MinRate, MaxRate], it returns a copy of p unchanged; use
// NewResampler to get an error for bad rates instead.
func Resample(p PCM, rate int) PCM {
	if p.Rate == rate {
		return PCM{Samples: append([]int16(nil), p.Samples...), Rate: p.Rate}
	}
	r, err := NewResampler(p.Rate, rate)
	if err != nil {
		return PCM{Samples: append([]int16(nil), p.Samples...), Rate: p.Rate}
	}
	out := r.Process(p.Samples)
	out = append(out, r.Flush()...)
	return PCM{Samples: out, Rate: rate}
}
