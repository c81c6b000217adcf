package gateway

import (
	"encoding/json"
	"testing"
)

// The pre-rendered text chunk is byte for byte the marshalled chunk, whatever the text.
func TestContentChunkTemplateMatchesMarshal(t *testing.T) {
	for _, usage := range []bool{false, true} {
		chunk := func(delta openAIDelta, finish *string) openAIChunk {
			ch := openAIChunk{ID: "chatcmpl-abc", Object: "chat.completion.chunk", Created: 1700000000, Model: `fam "quoted" <model>`,
				Choices: []openAIChunkChoice{{Delta: delta, FinishReason: finish}}}
			if usage {
				ch.Usage = json.RawMessage("null")
			}
			return ch
		}
		tmpl, err := newContentChunkTemplate(chunk)
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range []string{
			"", " blip", "Hello, world.", `say "hi"`, `back\slash`, "tab\tnew\nline\r", "<script>&amp;</script>",
			"héllo wörld", "emoji 🎉", "\u2028\u2029", "bad utf-8 \xff\xfe", "nul \x00 bell \x07", "del \x7f",
		} {
			want, err := json.Marshal(chunk(openAIDelta{Content: &text}, nil))
			if err != nil {
				t.Fatal(err)
			}
			want = append(append([]byte("data: "), want...), "\n\n"...)
			if got := tmpl.appendFrame(nil, text); string(got) != string(want) {
				t.Errorf("usage %t, text %q:\n got %s\nwant %s", usage, text, got, want)
			}
		}
	}
}
