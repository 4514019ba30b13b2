/* grow: room in a dynamic array. */
#include "testutil.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "grow.h"

static void test_room_is_kept_and_doubling_starts_at_first(void **state)
{
	(void)state;
	size_t cap = 0;
	int *v = grow(NULL, &cap, 1, sizeof *v, 8);
	assert_non_null(v);
	assert_int_equal(cap, 8);
	v[7] = 7;
	assert_ptr_equal(grow(v, &cap, 8, sizeof *v, 8), v); /* room: untouched */
	assert_int_equal(cap, 8);
	v = grow(v, &cap, 9, sizeof *v, 8);
	assert_non_null(v);
	assert_int_equal(cap, 16);
	assert_int_equal(v[7], 7); /* kept */
	v = grow(v, &cap, 100, sizeof *v, 8); /* doubled until it fits */
	assert_non_null(v);
	assert_int_equal(cap, 128);
	free(v);
}

static void test_overflow_leaves_the_array_alone(void **state)
{
	(void)state;
	size_t cap = 4;
	char *v = malloc(cap);
	assert_non_null(v);
	errno = 0;
	assert_null(grow(v, &cap, SIZE_MAX, 1, 4));
	assert_int_equal(errno, ENOMEM);
	assert_int_equal(cap, 4);
	errno = 0;
	assert_null(grow(v, &cap, 5, SIZE_MAX / 4, 4)); /* 8 elements overflow */
	assert_int_equal(errno, ENOMEM);
	assert_int_equal(cap, 4);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_room_is_kept_and_doubling_starts_at_first),
		cmocka_unit_test(test_overflow_leaves_the_array_alone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
