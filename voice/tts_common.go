package voice

import (
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// What the TTS providers share: request checks, speed ranges, content types.

// ErrEmptyText is returned for a SpeechRequest with nothing to say (empty or only whitespace).
var ErrEmptyText = errors.New("voice: no text to speak")

// ErrTextTooLong is returned for text over a provider's MaxChars. Such errors also match
// ErrUnsupported, so the router can try a provider with a higher limit; the sentence chunker
// normally keeps texts far below every limit.
var ErrTextTooLong = errors.New("voice: text too long")

// ttsCheckText validates the text of a request: it must be valid UTF-8, say something, and have
// at most maxChars characters (runes, which is how the providers count and bill).
func ttsCheckText(provider, text string, maxChars int) error {
	if !utf8.ValidString(text) {
		return fmt.Errorf("%s tts: text is not valid UTF-8", provider)
	}
	if strings.TrimSpace(text) == "" {
		return fmt.Errorf("%s tts: %w", provider, ErrEmptyText)
	}
	if n := utf8.RuneCountInString(text); maxChars > 0 && n > maxChars {
		return fmt.Errorf("%s tts: %w: %d characters, the limit is %d (%w)", provider, ErrTextTooLong, n, maxChars, ErrUnsupported)
	}
	return nil
}

// ttsSpeed turns SpeechRequest.Speed into the factor to send: 0 means 1, and values outside
// the provider's range [lo, hi] are clamped rather than refused, because the router passes one
// user preference to providers with different ranges. Negative, NaN and infinite speeds are
// bad input.
func ttsSpeed(provider string, speed, lo, hi float64) (float64, error) {
	if math.IsNaN(speed) || math.IsInf(speed, 0) || speed < 0 {
		return 0, fmt.Errorf("%s tts: speed %v: want a positive factor (1 is normal, 0 means 1)", provider, speed)
	}
	if speed == 0 {
		return 1, nil
	}
	return min(max(speed, lo), hi), nil
}

// ttsContentType is the media type of audio in one of the package's formats. Raw PCM has no
// registered type that says little-endian, so it is labelled audio/pcm with its rate.
func ttsContentType(format string, sampleRate int) string {
	switch format {
	case FormatWAV:
		return "audio/wav"
	case FormatMP3:
		return "audio/mpeg"
	case FormatOpus:
		return "audio/ogg; codecs=opus"
	case FormatULaw:
		return "audio/basic" // RFC 2046: 8 kHz mono µ-law
	case FormatALaw:
		return "audio/x-alaw-basic"
	case FormatPCM16:
		if sampleRate > 0 {
			return "audio/pcm; rate=" + strconv.Itoa(sampleRate)
		}
		return "audio/pcm"
	}
	return "application/octet-stream"
}

// ttsCheckAudioAnswer refuses a 2xx answer that is not audio: OpenAI-compatible servers
// sometimes report failures as JSON or HTML with status 200, and that body must not be played
// or cached as speech. It closes the body when it refuses.
func ttsCheckAudioAnswer(provider string, resp *http.Response) error {
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mediaType != "application/json" && !strings.HasPrefix(mediaType, "text/") {
		return nil
	}
	e := providerHTTPError(provider, "tts", resp, time.Now())
	e.Message = "answered " + mediaType + " instead of audio: " + e.Message
	return e
}
