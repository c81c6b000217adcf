package agents

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Registry holds the agents a gateway serves, by id.
type Registry struct {
	mu     sync.RWMutex
	agents map[string]Agent
}

// NewRegistry registers agents; ids must be unique.
func NewRegistry(agents ...Agent) (*Registry, error) {
	r := &Registry{agents: map[string]Agent{}}
	for _, a := range agents {
		if err := r.Register(a); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Register adds an agent.
func (r *Registry) Register(a Agent) error {
	id := a.Info().ID
	if id == "" {
		return fmt.Errorf("register agent: empty id")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.agents[id]; dup {
		return fmt.Errorf("register agent %q: already registered", id)
	}
	r.agents[id] = a
	return nil
}

// Get returns the agent with id.
func (r *Registry) Get(id string) (Agent, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	a, ok := r.agents[id]
	return a, ok
}

// List returns every agent's Info, sorted by id.
func (r *Registry) List() []Info {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Info, 0, len(r.agents))
	for _, a := range r.agents {
		out = append(out, a.Info())
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.ID, b.ID) })
	return out
}
