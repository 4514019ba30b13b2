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

.PHONY: all deps test-deps run test asan unit e2e install clean bench fuzz build-units build/asan-units
all: build/spoolrun

deps:
	@scripts/install-deps.sh

# The tests also need the tools they check the service side with.
test-deps:
	@scripts/install-deps.sh --test

run: deps
	@$(MAKE) --no-print-directory all
	@echo "spoolrun: drop task files into spool/incoming/ (write elsewhere, then mv in); results appear in spool/results/"
	@chmod go-w spool  # a checkout under umask 002 would be refused as group-writable
	exec build/spoolrun watch --config conf/spoolrun.ini

# Every test: unit and end-to-end on the normal build, then both again under
# AddressSanitizer + UBSan. The last line is "N passed, N failed".
test: test-deps
	@$(MAKE) --no-print-directory all build-units build/asan/spoolrun build/asan-units
	@PYTHON=$(PYTHON) tests/run.sh build build/asan

asan: test-deps
	@$(MAKE) --no-print-directory build/asan/spoolrun build/asan-units
	@PYTHON=$(PYTHON) tests/run.sh build/asan

unit: build-units
	@PYTHON=$(PYTHON) tests/run.sh --unit-only build

e2e: all
	@PYTHON=$(PYTHON) tests/run.sh --e2e-only build

# `make install` (PREFIX, DESTDIR): the program, its man page, the Python
# client where $(PYTHON) finds it, the systemd unit with its user and spool
# (sysusers.d, tmpfiles.d), a cron example, and /etc/spoolrun/spoolrun.ini
# for the system spool, which is never overwritten. docs/service.md.
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/spoolrun
LIBDIR      ?= $(PREFIX)/lib
UNITDIR     ?= $(LIBDIR)/systemd/system
SYSCONFDIR  ?= /etc
SPOOLDIR    ?= /var/spool/spoolrun
# The site directory below PREFIX that $(PYTHON) searches (Debian: dist-packages).
PYTHONDIR   ?= $(shell $(PYTHON) -c 'import site; d = [p for p in site.getsitepackages() if p.startswith("$(PREFIX)/")]; print(d[0] if d else "$(PREFIX)/lib/python3/dist-packages")' 2>/dev/null || echo $(PREFIX)/lib/python3/dist-packages)
# The installed files name the installed paths: one sed for all of them.
PATHS_SED := -e 's|/usr/local/bin/spoolrun|$(BINDIR)/spoolrun|g' \
	-e 's|/etc/spoolrun/|$(SYSCONFDIR)/spoolrun/|g' -e 's|/var/spool/spoolrun|$(SPOOLDIR)|g'

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(DOCDIR) \
		$(DESTDIR)$(PYTHONDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(LIBDIR)/sysusers.d \
		$(DESTDIR)$(LIBDIR)/tmpfiles.d $(DESTDIR)$(SYSCONFDIR)/spoolrun
	install -m 0755 build/spoolrun $(DESTDIR)$(BINDIR)/spoolrun
	install -m 0644 docs/spoolrun.1 $(DESTDIR)$(MANDIR)/man1/spoolrun.1
	install -m 0644 scripts/spoolrun_client.py $(DESTDIR)$(PYTHONDIR)/spoolrun_client.py
	sed $(PATHS_SED) scripts/spoolrun.service > $(DESTDIR)$(UNITDIR)/spoolrun.service
	sed $(PATHS_SED) scripts/spoolrun.sysusers > $(DESTDIR)$(LIBDIR)/sysusers.d/spoolrun.conf
	sed $(PATHS_SED) scripts/spoolrun.tmpfiles > $(DESTDIR)$(LIBDIR)/tmpfiles.d/spoolrun.conf
	sed $(PATHS_SED) scripts/spoolrun.cron > $(DESTDIR)$(DOCDIR)/spoolrun.cron
	chmod 0644 $(DESTDIR)$(UNITDIR)/spoolrun.service $(DESTDIR)$(DOCDIR)/spoolrun.cron \
		$(DESTDIR)$(LIBDIR)/sysusers.d/spoolrun.conf $(DESTDIR)$(LIBDIR)/tmpfiles.d/spoolrun.conf
	install -m 0644 conf/spoolrun.ini README.md docs/service.md $(DESTDIR)$(DOCDIR)/
	@# The system config is the admin's once installed: never replaced.
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/spoolrun/spoolrun.ini ]; then \
		echo "install: keeping $(DESTDIR)$(SYSCONFDIR)/spoolrun/spoolrun.ini (the new default is $(DOCDIR)/spoolrun.ini)"; \
	else \
		sed -e 's|^root = \.\./spool$$|root = $(SPOOLDIR)|' $(PATHS_SED) conf/spoolrun.ini \
			> $(DESTDIR)$(SYSCONFDIR)/spoolrun/spoolrun.ini && \
		chmod 0644 $(DESTDIR)$(SYSCONFDIR)/spoolrun/spoolrun.ini; \
	fi
	@# On the live system (no DESTDIR), create the user and the spool as a package would.
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ] && command -v systemd-sysusers >/dev/null; then \
		systemd-sysusers $(LIBDIR)/sysusers.d/spoolrun.conf && \
		systemd-tmpfiles --create $(LIBDIR)/tmpfiles.d/spoolrun.conf; \
	fi

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
