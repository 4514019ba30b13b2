# spoolrun — see README.md. `make run` and `make test` are the two commands.
CC      ?= cc
CFLAGS  ?= -O2 -g
PREFIX  ?= /usr/local
DESTDIR ?=
PYTHON  ?= /usr/bin/python3

WARNINGS := -std=gnu11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wformat=2 -Wno-format-nonliteral
LDLIBS   := -ljansson -liniparser
SAN      := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

SRC       := $(wildcard src/*.c)
LIB_SRC   := $(filter-out src/main.c,$(SRC))
UNIT_SRC  := $(wildcard tests/unit/test_*.c)

# `make` alone builds the program (the first rule would otherwise be a library).
.DEFAULT_GOAL := all

# One tree per flavour: build/ (normal) and build/asan/ (sanitizers).
define flavour
$(1)/obj/%.o: src/%.c $$(wildcard src/*.h) | $(1)/obj
	$$(CC) $$(WARNINGS) $(2) -MMD -c $$< -o $$@
$(1)/libspoolrun.a: $$(LIB_SRC:src/%.c=$(1)/obj/%.o)
	$$(AR) rcs $$@ $$^
$(1)/spoolrun: $(1)/obj/main.o $(1)/libspoolrun.a
	$$(CC) $(2) -o $$@ $$^ $$(LDLIBS)
$(1)/tests/%: tests/unit/%.c tests/unit/testutil.h tests/unit/spool_fixture.h $(1)/libspoolrun.a | $(1)/tests
	$$(CC) $$(WARNINGS) $(2) -Isrc -o $$@ $$< $(1)/libspoolrun.a -lcmocka $$(LDLIBS)
$(1)/tests/fuzz-replay: tests/fuzz/replay.c tests/fuzz/fuzz_task.c $(1)/libspoolrun.a | $(1)/tests
	$$(CC) $$(WARNINGS) $(2) -Isrc -o $$@ tests/fuzz/replay.c tests/fuzz/fuzz_task.c $(1)/libspoolrun.a $$(LDLIBS)
$(1)/obj $(1)/tests:
	mkdir -p $$@
$(1)-units: $$(UNIT_SRC:tests/unit/%.c=$(1)/tests/%) $(1)/tests/fuzz-replay
endef

$(eval $(call flavour,build,$(CFLAGS)))
$(eval $(call flavour,build/asan,-O1 -g $(SAN)))

.PHONY: all deps run test asan unit e2e install clean bench fuzz build-units build/asan-units
all: build/spoolrun

deps:
	@scripts/install-deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@echo "spoolrun: drop task files into spool/incoming/ (write elsewhere, then mv in); results appear in spool/results/"
	@chmod go-w spool  # a checkout under umask 002 would be refused as group-writable
	exec build/spoolrun watch --config conf/spoolrun.ini

# Every test: unit and end-to-end on the normal build, then both again under
# AddressSanitizer + UBSan. The last line is "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory all build-units build/asan/spoolrun build/asan-units
	@PYTHON=$(PYTHON) tests/run.sh build build/asan

asan: deps
	@$(MAKE) --no-print-directory build/asan/spoolrun build/asan-units
	@PYTHON=$(PYTHON) tests/run.sh build/asan

unit: build-units
	@PYTHON=$(PYTHON) tests/run.sh --unit-only build

e2e: all
	@PYTHON=$(PYTHON) tests/run.sh --e2e-only build

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/doc/spoolrun
	install -m 0755 build/spoolrun $(DESTDIR)$(PREFIX)/bin/spoolrun
	install -m 0644 docs/spoolrun.1 $(DESTDIR)$(PREFIX)/share/man/man1/spoolrun.1
	install -m 0644 conf/spoolrun.ini README.md $(DESTDIR)$(PREFIX)/share/doc/spoolrun/

# libFuzzer on the task parser for FUZZ_SECONDS (default 60), starting from
# the seed corpus; new inputs go to build/fuzz-corpus, crashes to build/.
FUZZ_SECONDS ?= 60
fuzz:
	@scripts/install-deps.sh --fuzz
	mkdir -p build/fuzz-corpus
	clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -o build/fuzz-task \
		tests/fuzz/fuzz_task.c $(LIB_SRC) $(LDLIBS)
	build/fuzz-task -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=build/ \
		build/fuzz-corpus tests/fuzz/corpus

# Benchmarks (bench/README.md): installs the peers it compares against, builds,
# runs bench/run.py; results are printed and written to bench/results/.
# BENCH_QUICK=1 for a ~1 minute smoke run.
bench:
	@scripts/install-deps.sh --bench
	@$(MAKE) --no-print-directory all
	$(PYTHON) bench/run.py

clean:
	rm -rf build

-include $(wildcard build/obj/*.d build/asan/obj/*.d)
