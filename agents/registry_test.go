package agents_test

import (
	"slices"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents"
)

func TestNewRegistryRejectsBadIDs(t *testing.T) {
	tests := []struct {
		name string
		ids  []string
	}{
		{"duplicate", []string{"a", "b", "a"}},
		{"empty", []string{"a", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var list []agents.Agent
			for _, id := range tt.ids {
				list = append(list, &stubAgent{id: id})
			}
			if _, err := agents.NewRegistry(list...); err == nil {
				t.Errorf("NewRegistry(%q) succeeded", tt.ids)
			}
		})
	}
}

func TestRegistry(t *testing.T) {
	first := &stubAgent{id: "mid"}
	reg, err := agents.NewRegistry(&stubAgent{id: "zeta"}, first, &stubAgent{id: "alpha"})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(&stubAgent{id: "mid"}); err == nil {
		t.Error("registering a duplicate id succeeded")
	}
	if err := reg.Register(&stubAgent{id: ""}); err == nil {
		t.Error("registering an empty id succeeded")
	}
	if err := reg.Register(&stubAgent{id: "beta"}); err != nil {
		t.Fatal(err)
	}

	var ids []string
	for _, info := range reg.List() {
		ids = append(ids, info.ID)
	}
	if want := []string{"alpha", "beta", "mid", "zeta"}; !slices.Equal(ids, want) {
		t.Errorf("List ids = %q, want %q", ids, want)
	}
	if got, ok := reg.Get("mid"); !ok || got != agents.Agent(first) {
		t.Errorf("Get(mid) = %v, %v; want the first registered agent", got, ok)
	}
	if _, ok := reg.Get("missing"); ok {
		t.Error("Get(missing) found an agent")
	}
}
