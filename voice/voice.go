// Package voice turns text into speech and speech into text through the cheapest tier that
// serves: the STT and TTS providers, the tier router and the TTS cache. Audio codecs live in
// voice/audio. voice depends on session (stores, clock) and never on agents or gateway; what
// it needs from the economics code (prices, the budget state) it asks for through the small
// interfaces below, which cmd wires.
package voice

import (
	"context"
	"errors"
	"io"
	"time"
)

// Tier is a price and quality class of speech providers, cheapest first.
type Tier string

// Tiers, in the router's order from cheapest to dearest.
const (
	TierNative     Tier = "native"      // the device transcribes and speaks: $0
	TierLocal      Tier = "local"       // espeak-ng / flite / pocketsphinx on the server: $0
	TierSelfHosted Tier = "self-hosted" // Whisper-compatible servers, F5-TTS: ~$0.001/min
	TierCloud      Tier = "cloud"       // OpenAI speech and transcription
	TierPremium    Tier = "premium"     // ElevenLabs, premium users only
)

// Tiers lists every tier from cheapest to dearest.
var Tiers = []Tier{TierNative, TierLocal, TierSelfHosted, TierCloud, TierPremium}

// Audio formats providers and clients exchange.
const (
	FormatWAV   = "wav"   // RIFF/WAVE, PCM16
	FormatPCM16 = "pcm16" // raw little-endian 16-bit mono
	FormatMP3   = "mp3"
	FormatULaw  = "g711_ulaw"
	FormatALaw  = "g711_alaw"
	FormatOpus  = "opus"
)

// ErrUnsupported is returned by a provider asked for something it cannot do (a format, a
// language); the router then tries the next provider.
var ErrUnsupported = errors.New("voice: not supported by this provider")

// SpeechRequest asks for text to be spoken.
type SpeechRequest struct {
	Text string
	// Voice is provider-specific ("alloy", an ElevenLabs voice id, "kal16"); empty means the
	// provider's default.
	Voice string
	// Format of the audio wanted (FormatMP3, FormatWAV, FormatPCM16, FormatULaw, FormatOpus).
	// Empty means the provider's native format.
	Format string
	// SampleRate wanted for PCM formats; 0 means the provider's default.
	SampleRate int
	// Speed multiplies the speaking rate; 0 means 1.
	Speed float64
	// Model is provider-specific ("tts-1", "eleven_flash_v2_5"); empty means the default.
	Model string
}

// Speech is synthesized audio. Audio streams as the provider produces it; the caller closes it.
type Speech struct {
	Audio       io.ReadCloser
	Format      string
	ContentType string
	SampleRate  int // 0 when the format carries it (wav, mp3)
	Provider    string
	Model       string
	Voice       string
}

// TTS is a text-to-speech provider.
type TTS interface {
	Name() string
	Tier() Tier
	Synthesize(ctx context.Context, req SpeechRequest) (*Speech, error)
}

// TranscribeRequest asks for audio to be transcribed.
type TranscribeRequest struct {
	Audio []byte
	// Format of Audio (FormatWAV, FormatMP3, FormatPCM16, ...).
	Format string
	// SampleRate of raw PCM audio; ignored for formats that carry it.
	SampleRate int
	// Language hint (ISO-639-1), empty to let the provider detect it.
	Language string
	// Model is provider-specific ("whisper-1", "gpt-4o-transcribe"); empty means the default.
	Model string
	// Transcript is the client's own transcript, for the native tier.
	Transcript string
}

// Transcript is recognized speech.
type Transcript struct {
	Text     string
	Language string
	// Duration of the audio transcribed (what STT is billed by).
	Duration time.Duration
	Provider string
	Model    string
}

// STT is a speech-to-text provider.
type STT interface {
	Name() string
	Tier() Tier
	Transcribe(ctx context.Context, req TranscribeRequest) (*Transcript, error)
}

// Pricer prices speech; agents.Prices satisfies it. Keys are "provider/model".
type Pricer interface {
	TTSCost(providerModel string, chars int) float64
	STTCost(providerModel string, audio time.Duration) float64
}

// BudgetState tells the router whether cost-saving mode is on.
type BudgetState interface {
	CostSaving(ctx context.Context) bool
}
