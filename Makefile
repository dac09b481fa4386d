# Ratewarden build, test and benchmark entry points.
#
#   make build   build ./caddy with the plugin (xcaddy; only when sources changed)
#   make run     build, then run ./caddy with examples/Caddyfile
#   make test    vet, build, check-alerts, then every test with -race and coverage
#   make bench   Go benchmarks, then the wrk load scripts (scripts/bench-wrk.sh,
#                scripts/bench-features.sh, then scripts/bench-redis.sh)
#   make check   fail if gofmt would change a file
#   make check-alerts  promtool on the example Prometheus alerts and their
#                tests, and the Grafana dashboard's metric names
#   make fmt     gofmt every file in place
#   make deps    install what the tests need (bench-deps: what the bench needs)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO            ?= go
CADDY_VERSION := v2.11.9
XCADDY        := $(GO) run github.com/caddyserver/xcaddy/cmd/xcaddy@v0.4.5
MODULE        := github.com/ratewarden/ratewarden
CADDY         := caddy

# Everything that ends up in the binary: non-test Go files (and files they may
# embed) outside the directories that only hold tests, scripts and docs.
BUILD_INPUTS := go.mod $(wildcard go.sum) $(shell find . \
	\( -path ./.git -o -path ./.build -o -path ./integration -o -path ./scripts \
	   -o -path ./examples -o -path ./docs -o -path ./bin -o -name testdata \) -prune -o \
	-type f \( \( -name '*.go' -a ! -name '*_test.go' \) -o -name '*.lua' \
	   -o -name '*.html' -o -name '*.css' -o -name '*.js' -o -name '*.tmpl' \) -print)

# Tools the targets need, as command:debian-package pairs.
TEST_TOOLS  := redis-server:redis-server chromium:chromium chromedriver:chromium-driver
BENCH_TOOLS := wrk:wrk curl:curl
REDIS_BENCH_TOOLS := redis-server:redis-server redis-cli:redis-tools redis-benchmark:redis-tools

# need installs the Debian package of every missing command when running as
# root, and otherwise stops with one line saying what to install.
define need
@missing=""; \
	for pair in $(1); do \
		cmd=$${pair%%:*}; pkg=$${pair##*:}; \
		command -v "$$cmd" >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing:$$missing"; \
			export DEBIAN_FRONTEND=noninteractive; \
			apt-get install -y -q --no-install-recommends $$missing >/dev/null 2>&1 || \
			{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $$missing >/dev/null; }; \
		else \
			echo "missing tools: install the Debian packages:$$missing (apt-get install$$missing)"; exit 1; \
		fi; \
	fi
endef

.PHONY: build run test vet bench bench-go bench-wrk bench-redis deps bench-deps check check-alerts fmt clean

build: $(CADDY)

$(CADDY): $(BUILD_INPUTS)
	$(XCADDY) build $(CADDY_VERSION) --with $(MODULE)@v0.0.0=. --output ./$(CADDY)

examples/Caddyfile:
	@mkdir -p examples
	@printf '%s\n' \
		'{' \
		'	admin localhost:2019' \
		'}' \
		'' \
		'http://localhost:8080 {' \
		'	rate_limit {' \
		'		zone per_ip {' \
		'			key {remote_host}' \
		'			events 5' \
		'			window 10s' \
		'		}' \
		'	}' \
		'	respond "ok"' \
		'}' > $@
	@echo "wrote placeholder $@"

run: $(CADDY) examples/Caddyfile
	./$(CADDY) run --config examples/Caddyfile --adapter caddyfile

deps:
	@command -v $(GO) >/dev/null 2>&1 || { echo "missing tools: install Go 1.26 (https://go.dev/dl/)"; exit 1; }
	$(call need,$(TEST_TOOLS))

bench-deps: deps
	$(call need,$(BENCH_TOOLS))

vet: deps
	$(GO) vet ./...

# Total statement coverage of the Go packages below which `make test` fails.
MIN_COVERAGE := 80

# Packages run one at a time (-p 1; tests inside a package still run in
# parallel): the Redis store's latency tests and the end-to-end tests (real
# Caddy processes, Redis servers and Chromium) would otherwise share two
# cores and measure each other.
test: deps check vet check-alerts $(CADDY)
	RATEWARDEN_CADDY=$(abspath $(CADDY)) $(GO) test -race -count=1 -p 1 -timeout 12m \
		-coverprofile=coverage.out -coverpkg=./... ./...
	@total=$$($(GO) tool cover -func=coverage.out | tail -1 | awk '{print $$NF}' | tr -d %); \
	echo "total coverage: $$total% (minimum $(MIN_COVERAGE)%)"; \
	awk -v t="$$total" -v m="$(MIN_COVERAGE)" 'BEGIN { exit !(t >= m) }' || \
		{ echo "coverage $$total% is below $(MIN_COVERAGE)%"; exit 1; }

# bench-redis runs after bench-wrk (not beside it under -j), so the two never
# load the machine at once.
bench: bench-go bench-wrk
	$(MAKE) --no-print-directory bench-features
	$(MAKE) --no-print-directory bench-redis

bench-go: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench-wrk: bench-deps $(CADDY)
	CADDY=$(abspath $(CADDY)) scripts/bench-wrk.sh

bench-features: bench-deps $(CADDY)
	CADDY=$(abspath $(CADDY)) scripts/bench-features.sh

bench-redis: bench-deps $(CADDY)
	$(call need,$(REDIS_BENCH_TOOLS))
	CADDY=$(abspath $(CADDY)) scripts/bench-redis.sh

check:
	@files=$$(gofmt -l $$(find . -name '*.go' -not -path './.build/*' -not -path './.git/*')); \
	if [ -n "$$files" ]; then echo "gofmt needed on:"; echo "$$files"; exit 1; fi

# check-alerts installs promtool (Debian's prometheus) and jq when missing.
check-alerts:
	scripts/check-alerts.sh

fmt:
	gofmt -w $$(find . -name '*.go' -not -path './.build/*' -not -path './.git/*')

clean:
	rm -rf ./$(CADDY) ./.build coverage.out
