# Thin wrapper over CMake for the README's two commands. CMake is the build.
#   make run   install what is missing, build, generate the sample, run it
#   make test  install what is missing, build, run every test, then again under ASan+UBSan
BUILD  ?= build
SAN    ?= build-san
JOBS   ?= $(shell nproc)
SAMPLE ?= sample

.PHONY: all run test build deps deps-test sample bench clean

all: build

deps:
	@sh deploy/install-deps.sh build

deps-test:
	@sh deploy/install-deps.sh test

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

$(SAMPLE)/telemetry.ndjson: | build
	@mkdir -p $(SAMPLE)
	@$(BUILD)/gen --plants 1000 --days 3 --interval 300 --bad-lines 5 \
	    --registry $(SAMPLE)/registry.yaml --telemetry $(SAMPLE)/telemetry.ndjson

sample: build $(SAMPLE)/telemetry.ndjson

run: build sample
	@$(BUILD)/vigil run --rules rules --registry $(SAMPLE)/registry.yaml \
	    --input $(SAMPLE)/telemetry.ndjson --alerts - --until 2025-11-26T08:00:01Z \
	    --sms $(SAMPLE)/sms.ndjson \
	    --dead-letter $(SAMPLE)/dead-letter.ndjson --summary

test: deps-test
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@cmake -S . -B $(SAN) -DCMAKE_BUILD_TYPE=Debug -DVG_SANITIZE=ON >/dev/null
	@cmake --build $(SAN) -j $(JOBS)
	@cd $(SAN) && ctest --output-on-failure -j $(JOBS)

bench: build
	@sh bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(SAN) $(SAMPLE)
