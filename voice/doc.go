// Package voice will hold audio, VAD and turn taking, the STT and TTS providers, the voice
// tier router, the TTS cache and the streaming voice pipeline (see DESIGN.md). Text sessions
// do not depend on it.
package voice
