# Two entry points: `make demo` and `make test`. Both install what is missing first.
CARGO ?= cargo
# Mesa's Vulkan device-select layer probes for a display server and complains on headless
# machines; wgpu chooses the adapter itself.
export NODEVICE_SELECT ?= 1

.PHONY: setup build demo test lint bench bless

setup:
	bash scripts/setup

# reelfarm-espeak is the text-to-speech helper (GPL-3.0-or-later) that reelfarm runs as a
# separate process; it sits next to the reelfarm binary.
build: setup
	$(CARGO) build --release --locked -p reelfarm -p tts-espeak

demo: build
	./target/release/reelfarm demo

# Release profile: tests share the optimized dependency build with `make demo`, and the
# GPU/encoder tests run at realistic speed.
# The store suite runs against SQLite and a real PostgreSQL on loopback (started here).
export REELFARM_TEST_POSTGRES_URL ?= postgres://reelfarm:reelfarm@127.0.0.1:5432/reelfarm_test
# The blob store suite and a farm test also run against a real S3-compatible server on loopback
# (s3s-fs, started here), with its fixed test bucket and credentials.
test: export REELFARM_TEST_S3_URL = s3://reelfarm-test
test: export AWS_ENDPOINT = http://127.0.0.1:9000
test: export AWS_ALLOW_HTTP = true
test: export AWS_ACCESS_KEY_ID = reelfarm
test: export AWS_SECRET_ACCESS_KEY = reelfarm-test-secret
test: export AWS_REGION = us-east-1
test: setup
	bash scripts/postgres-up
	bash scripts/s3-up
	$(CARGO) test --release --locked --workspace
	bash scripts/python-client-test
	bash scripts/openapi-client-test
	bash scripts/deploy-check

# Clippy over every target, warnings as errors (CI lints the same crates while testing).
lint: setup
	$(CARGO) clippy --release --locked --workspace --all-targets -- -D warnings

bench: build
	./target/release/reelfarm bench w1
	./target/release/reelfarm bench lipsync
	$(CARGO) bench --locked -p benches

# Regenerate committed snapshots (JSON Schema, OpenAPI, configuration reference) after an
# intended change.
bless: setup
	REELFARM_BLESS=1 $(CARGO) test --release --locked -p template schema
	REELFARM_BLESS=1 $(CARGO) test --release --locked -p coordinator --test it rest::openapi
	REELFARM_BLESS=1 $(CARGO) test --release --locked -p reelfarm --bin reelfarm reference
