# Dartmouth: `make run` builds and starts the gateway on embedded defaults; `make test` installs
# what the tests need when it is missing, then runs them. Under CI=true a missing test
# dependency is an error, never a skip.

GO        ?= go
BIN       := bin/dartmouth
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
TESTFLAGS ?= -race -count=1 -timeout 15m
# Optional local speech engines (espeak-ng, flite, pocketsphinx) installed by `make run` when
# possible; set DARTMOUTH_INSTALL_SPEECH=0 to skip.
DARTMOUTH_INSTALL_SPEECH ?= 1

.PHONY: run build test test-deps lint fuzz bench bench-go soak speech-engines clean

run: build speech-engines
	exec "$(abspath $(BIN))" serve

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/dartmouth

# Best effort: the gateway runs without them (native and cloud tiers), so a failure only warns.
speech-engines:
	@if [ "$(DARTMOUTH_INSTALL_SPEECH)" = "1" ] && ! command -v espeak-ng >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing local speech engines (espeak-ng, flite, pocketsphinx)..."; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng flite pocketsphinx pocketsphinx-en-us >/dev/null) \
	      || echo "warning: could not install the local speech engines; the local voice tier stays off"; \
	  else \
	    echo "note: local speech engines not installed (needs root and apt-get); the local voice tier stays off"; \
	  fi; \
	fi

# Debian packages the tests use: the Redis and PostgreSQL servers they start themselves, the
# local speech engines of the local voice tier (flite and espeak-ng speak, pocketsphinx
# listens), libopus for the Opus encoder, built with -tags libopus, and opus-tools (opusenc
# makes the Opus a browser would send, for the WebRTC tests), and Chromium for the browser
# tests of the web widget and pages (driven by playwright-core from npm, in web/test).
TEST_PACKAGES := gcc libc6-dev pkg-config redis-server postgresql espeak-ng flite pocketsphinx pocketsphinx-en-us libopus-dev opus-tools chromium

# Installs what the tests need when it is missing. No service is started (the tests start
# their own Redis and PostgreSQL). Locally a failed install warns; under CI=true it fails the run.
test-deps:
	@command -v $(GO) >/dev/null 2>&1 || { echo "error: go is not installed (need Go 1.24+)"; exit 1; }
	@missing=$$(for p in $(TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing test dependencies:" $$missing; \
	  ok=1; \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    policy=; if [ ! -e /usr/sbin/policy-rc.d ]; then policy=/usr/sbin/policy-rc.d; printf '#!/bin/sh\nexit 101\n' > $$policy && chmod +x $$policy; fi; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) && ok=0; \
	    if [ -n "$$policy" ]; then rm -f $$policy; fi; \
	    if [ $$ok = 0 ] && command -v systemctl >/dev/null 2>&1; then for unit in redis-server postgresql; do systemctl disable $$unit >/dev/null 2>&1 || true; done; fi; \
	  fi; \
	  if [ $$ok != 0 ]; then \
	    if [ "$$CI" = "true" ]; then echo "error: could not install" $$missing "(needs root and apt-get)"; exit 1; fi; \
	    echo "warning: could not install" $$missing "(needs root and apt-get); the tests that use them will fail"; \
	  fi; \
	fi
	@if [ ! -f web/test/node_modules/playwright-core/package.json ]; then \
	  echo "installing playwright-core (npm ci in web/test)..."; \
	  if command -v npm >/dev/null 2>&1 && (cd web/test && npm ci --no-audit --no-fund >/dev/null); then :; \
	  elif [ "$$CI" = "true" ]; then echo "error: could not install playwright-core (needs Node.js and npm: npm ci in web/test)"; exit 1; \
	  else echo "warning: could not install playwright-core (npm ci in web/test); the browser test will fail"; fi; \
	fi

test: test-deps lint
	$(GO) test $(TESTFLAGS) ./...
	$(GO) test $(TESTFLAGS) -tags 'libopus nolibopusfile' ./voice/ ./voice/audio/
	@if [ "$$CI" = "true" ]; then $(MAKE) --no-print-directory fuzz FUZZTIME=2s; fi

lint:
	@out=$$(gofmt -l cmd gateway voice agents session web bench); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Every fuzz target of the repository (found by `func Fuzz` in the test files, so a new one is
# never left out), one at a time, each for FUZZTIME with one worker (the machines are small and
# shared). Each package's instrumented test binary is built once for all its targets. Prints
# each target's final "fuzz: elapsed ..., execs ..." line; a crasher (written to the package's
# testdata/fuzz/<Target>/) fails the run once the remaining targets have run.
# Minimizing is capped by count: the socket targets' coverage varies with scheduling, and the
# default 60 s per "new" input would eat the whole run.
FUZZTIME         ?= 1m
FUZZMINIMIZETIME ?= 200x
FUZZDIRS         := cmd gateway voice agents session web bench

fuzz:
	@tmp=$$(mktemp -d); failed=; cache=$$($(GO) env GOCACHE)/fuzz; \
	for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' $(FUZZDIRS) | xargs -n 1 dirname | sort -u); do \
	  bin=$$tmp/$$(echo $$dir | tr / _).test; \
	  if ! $(GO) test -c -fuzz . -o $$bin ./$$dir >$$tmp/log 2>&1; then \
	    cat $$tmp/log; failed="$$failed ./$$dir(build)"; continue; \
	  fi; \
	  pkg=$$($(GO) list ./$$dir); \
	  for name in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go | sed 's/^func //' | sort); do \
	    echo "== ./$$dir $$name"; \
	    if (cd $$dir && $$bin -test.run '^$$' -test.fuzz "^$$name\$$" -test.fuzztime $(FUZZTIME) \
	        -test.fuzzminimizetime $(FUZZMINIMIZETIME) -test.parallel 1 -test.fuzzcachedir $$cache/$$pkg) >$$tmp/log 2>&1; then \
	      grep '^fuzz: elapsed' $$tmp/log | tail -n 1; \
	    else \
	      grep -v '^fuzz: elapsed' $$tmp/log | tail -n 30; failed="$$failed ./$$dir:$$name"; \
	    fi; \
	  done; \
	done; rm -rf $$tmp; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed"; exit 1; fi

# The benchmark table of issue 9 (bench/main.go): a real gateway process on loopback with an
# instant fake provider, and the packages' Go benchmarks; results in bench/results/.
# BENCHFLAGS=-quick for a short smoke run, see `go run ./bench -h` for the rest.
bench:
	$(GO) run ./bench $(BENCHFLAGS)

# The soak test at length (every `go test` runs it for 20 s).
soak:
	DARTMOUTH_SOAK=$(or $(SOAK),2m) $(GO) test -count=1 -run '^TestSoakMixedLoad$$' -v -timeout 30m ./gateway/

# The raw Go benchmarks, without the table.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 3x ./agents/
	$(GO) test -run '^$$' -bench . -benchmem ./voice/...
	$(GO) test -run '^$$' -bench 'VoiceWSEndOfSpeech' -benchtime 200x ./gateway/
	$(GO) test -run '^$$' -bench 'VoiceWSBargeIn' -benchtime 50x ./gateway/
	$(GO) test -run '^$$' -bench 'VoiceWSLocalEngines' -benchtime 5x ./gateway/
	$(GO) test -run '^$$' -bench 'VoiceWSConcurrentSessions' -benchtime 1x -v ./gateway/ | grep -E 'sessions|Benchmark'

clean:
	rm -rf bin
