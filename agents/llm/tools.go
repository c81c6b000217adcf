package llm

// Tool is a function the model may call. Parameters is its JSON Schema (an "object" schema).
type Tool struct {
	Name        string
	Description string
	Parameters  map[string]any
}

// ToolCall is one call the model asked for. Arguments is the JSON object the model wrote, as
// it wrote it (text, not json.RawMessage: it may be invalid JSON, which the caller reports back
// to the model rather than trusting).
type ToolCall struct {
	ID        string
	Name      string
	Arguments string
}

// UsesTools reports whether req is part of a tool loop: it offers tools or carries tool calls
// or results. Such replies depend on state outside the request (what the tools did), so they
// must never be answered from a response cache.
func UsesTools(req Request) bool {
	if len(req.Tools) > 0 {
		return true
	}
	for _, m := range req.Messages {
		if len(m.ToolCalls) > 0 || m.ToolCallID != "" || m.Role == "tool" {
			return true
		}
	}
	return false
}
