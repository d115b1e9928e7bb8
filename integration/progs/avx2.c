/* glibc/musl memcpy and an explicit AVX2 loop over 10 MiB: the guest must
 * expose AVX2 in CPUID and have it enabled in XCR0. */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEN (10UL * 1024 * 1024)

__attribute__((target("avx2"))) static void copy_avx2(uint8_t *dst, const uint8_t *src, size_t len) {
    for (size_t i = 0; i < len; i += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(src + i));
        v = _mm256_add_epi8(v, _mm256_set1_epi8(1));
        _mm256_storeu_si256((__m256i *)(dst + i), v);
    }
}

int main(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2")) {
        printf("FAIL: CPUID does not report AVX2\n");
        return 1;
    }
    uint8_t *src = malloc(LEN), *dst = malloc(LEN), *again = malloc(LEN);
    if (!src || !dst || !again) {
        printf("FAIL: malloc\n");
        return 1;
    }
    for (size_t i = 0; i < LEN; i++)
        src[i] = (uint8_t)(i * 31 + 7);
    memcpy(dst, src, LEN);
    if (memcmp(dst, src, LEN) != 0) {
        printf("FAIL: memcpy of 10 MiB\n");
        return 1;
    }
    copy_avx2(again, src, LEN);
    for (size_t i = 0; i < LEN; i++) {
        if (again[i] != (uint8_t)(src[i] + 1)) {
            printf("FAIL: AVX2 copy at %zu\n", i);
            return 1;
        }
    }
    printf("avx2 ok\n");
    return 0;
}
