/* Runs the fuzz target once over each file named on the command line, so
 * `make test` checks the seed corpus (and every crash reproducer added to
 * it) without libFuzzer; prints TAP. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (!f) {
			printf("not ok %d - %s: cannot open\n", i, argv[i]);
			continue;
		}
		static uint8_t buf[1 << 20];
		size_t n = fread(buf, 1, sizeof buf, f);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, n);
		printf("ok %d - fuzz corpus %s\n", i, argv[i]);
	}
	printf("1..%d\n", argc - 1);
	return 0;
}
