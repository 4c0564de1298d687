/*
 * sym.c -- the symmetric-evaluation lever of issue 13, measured before building it: for a
 * cluster pair (A, B) of a symmetric Gaussian kernel and a block of M columns, the time per
 * ordered pair of (1) today's one-sided evaluation, run for both A x B and B x A, against (2)
 * one two-sided pass that evaluates each unordered pair once and folds the term into A's rows
 * (lanes) and into B's rows (a horizontal sum per column per j; a shuffle tree for M = 8).
 * Single thread, GCC vector extensions of 16 floats, the same exp shape as the cc tier (degree-6
 * polynomial, clamp, exponent from the rounded bits). Not part of make bench: a probe.
 *   cc -O3 -march=native -mprefer-vector-width=512 -DM=8 bench/probes/sym.c -o sym -lm
 *   ./sym NA NB REPS  (NA a multiple of 16; M = 1, 8 or 16 columns)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifndef M
#define M 8
#endif
#define L 16
typedef float vf __attribute__((vector_size(64)));
typedef int vi __attribute__((vector_size(64)));
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
/* exp(-d/2) for d >= 0, degree-6 polynomial as our tier (same op count class) */
static inline vf vexp_neg_half(vf d)
{
    vf t = d * -0.72134752f; /* -d/2 * log2e */
    vi lo = t < -127.f; /* clamp */
    t = (vf)(((vi)t & ~lo) | ((vi)((vf){0} - 127.f) & lo));
    vf kf = t + 12582912.f;
    vf n = kf - 12582912.f;
    vf r = t - n;
    vf p = 1.5353362e-4f + r * 0;
    p = p * r + 1.3398874e-3f; p = p * r + 9.6182640e-3f; p = p * r + 5.5503409e-2f;
    p = p * r + 2.4022652e-1f; p = p * r + 6.9314718e-1f; p = p * r + 1.f;
    vi e = ((vi)kf + 127) << 23;
    return p * (vf)e;
}
int main(int argc, char **argv)
{
    int na = argc > 1 ? atoi(argv[1]) : 80, nb = argc > 2 ? atoi(argv[2]) : 12000, reps = argc > 3 ? atoi(argv[3]) : 20;
    na = (na + L - 1) / L * L;
    float *xa = aligned_alloc(64, sizeof(float) * 3 * na), *xb = aligned_alloc(64, sizeof(float) * 3 * nb);
    float *va = aligned_alloc(64, sizeof(float) * M * na), *vb = aligned_alloc(64, sizeof(float) * M * nb);
    float *oa = aligned_alloc(64, sizeof(float) * M * na), *ob = aligned_alloc(64, sizeof(float) * M * nb);
    srand(1);
    for (int i = 0; i < 3 * na; i++) xa[i] = rand() / (float)RAND_MAX;
    for (int i = 0; i < 3 * nb; i++) xb[i] = rand() / (float)RAND_MAX;
    for (int i = 0; i < M * na; i++) va[i] = rand() / (float)RAND_MAX;
    for (int i = 0; i < M * nb; i++) vb[i] = rand() / (float)RAND_MAX;
    /* SoA for the lanes: coordinates of a block of L rows */
    double best1 = 1e30, best2 = 1e30, s1 = 0, s2 = 0;
    for (int rep = 0; rep < reps; rep++) {
        /* one-sided, twice: A rows over B, then B rows over A (as the kernel does today) */
        double t0 = now();
        for (int side = 0; side < 2; side++) {
            const float *xr = side ? xb : xa, *xc = side ? xa : xb, *vc = side ? va : vb;
            float *o = side ? ob : oa;
            int nr = side ? nb / L * L : na, nc = side ? na : nb;
            for (int i0 = 0; i0 < nr; i0 += L) {
                vf x0, x1, x2, acc[M];
                for (int l = 0; l < L; l++) { x0[l] = xr[3*(i0+l)]; x1[l] = xr[3*(i0+l)+1]; x2[l] = xr[3*(i0+l)+2]; }
                for (int c = 0; c < M; c++) acc[c] = (vf){0};
                for (int j = 0; j < nc; j++) {
                    vf d0 = x0 - xc[3*j], d1 = x1 - xc[3*j+1], d2 = x2 - xc[3*j+2];
                    vf k = vexp_neg_half(d0*d0 + d1*d1 + d2*d2);
                    for (int c = 0; c < M; c++) acc[c] += k * vc[M*j+c];
                }
                for (int l = 0; l < L; l++) for (int c = 0; c < M; c++) o[M*(i0+l)+c] = acc[c][l];
            }
        }
        double t1 = now() - t0;
        s1 += oa[0] + ob[0];
        /* two-sided: A rows over B, and each pair's term into B's rows too */
        t0 = now();
        for (int j = 0; j < M * nb; j++) ob[j] = 0;
        vf x0[8], x1[8], x2[8], acc[8][M], vA[8][M];
        for (int i0 = 0, nv; i0 < na; i0 += L * nv) {
            nv = (na - i0) / L < 8 ? (na - i0) / L : 8;
            for (int v = 0; v < nv; v++) {
                for (int l = 0; l < L; l++) { int i = i0 + v*L + l; x0[v][l] = xa[3*i]; x1[v][l] = xa[3*i+1]; x2[v][l] = xa[3*i+2];
                    for (int c = 0; c < M; c++) vA[v][c][l] = va[M*i+c]; }
                for (int c = 0; c < M; c++) acc[v][c] = (vf){0};
            }
            for (int j = 0; j < nb; j++) {
                vf bj[M];
                for (int c = 0; c < M; c++) bj[c] = (vf){0};
                for (int v = 0; v < nv; v++) {
                    vf d0 = x0[v] - xb[3*j], d1 = x1[v] - xb[3*j+1], d2 = x2[v] - xb[3*j+2];
                    vf k = vexp_neg_half(d0*d0 + d1*d1 + d2*d2);
                    for (int c = 0; c < M; c++) { acc[v][c] += k * vb[M*j+c]; bj[c] += k * vA[v][c]; }
                }
#if M == 8
                {
                    /* transpose-add tree: 8 vectors of 16 partials -> 8 sums */
                    const vi lo = {0,1,2,3,4,5,6,7,16,17,18,19,20,21,22,23}, hi = {8,9,10,11,12,13,14,15,24,25,26,27,28,29,30,31};
                    vf s1v[4];
                    for (int q = 0; q < 4; q++) s1v[q] = __builtin_shuffle(bj[2*q], bj[2*q+1], lo) + __builtin_shuffle(bj[2*q], bj[2*q+1], hi);
                    /* s1v[q]: lanes 0-7 col 2q, 8-15 col 2q+1 */
                    const vi lo2 = {0,1,2,3,8,9,10,11,16,17,18,19,24,25,26,27}, hi2 = {4,5,6,7,12,13,14,15,20,21,22,23,28,29,30,31};
                    vf s2v[2];
                    for (int q = 0; q < 2; q++) s2v[q] = __builtin_shuffle(s1v[2*q], s1v[2*q+1], lo2) + __builtin_shuffle(s1v[2*q], s1v[2*q+1], hi2);
                    /* s2v[q]: groups of 4 lanes: col 4q, 4q+1, 4q+2, 4q+3 */
                    const vi lo3 = {0,1,4,5,8,9,12,13,16,17,20,21,24,25,28,29}, hi3 = {2,3,6,7,10,11,14,15,18,19,22,23,26,27,30,31};
                    vf s3 = __builtin_shuffle(s2v[0], s2v[1], lo3) + __builtin_shuffle(s2v[0], s2v[1], hi3);
                    /* s3: pairs of lanes: col 0,1,2,3,4,5,6,7 */
                    const vi ev = {0,2,4,6,8,10,12,14,0,2,4,6,8,10,12,14}, od = {1,3,5,7,9,11,13,15,1,3,5,7,9,11,13,15};
                    vf s4 = __builtin_shuffle(s3, ev) + __builtin_shuffle(s3, od);
                    for (int c = 0; c < 8; c++) ob[M*j+c] += s4[c];
                }
#else
                for (int c = 0; c < M; c++) { float s = 0; for (int l = 0; l < L; l++) s += bj[c][l]; ob[M*j+c] += s; }
#endif
            }
            for (int v = 0; v < nv; v++) for (int l = 0; l < L; l++) for (int c = 0; c < M; c++) oa[M*(i0+v*L+l)+c] = acc[v][c][l];
        }
        double t2 = now() - t0;
        s2 += oa[0] + ob[0];
        if (t1 < best1) best1 = t1;
        if (t2 < best2) best2 = t2;
    }
    double pairs = 2.0 * na * nb; /* ordered pairs computed */
    printf("M=%d na=%d nb=%d: one-sided %.3f ns/ordered pair, two-sided %.3f: %.2fx (check %g %g)\n", M, na, nb, 1e9*best1/pairs, 1e9*best2/pairs, best1/best2, s1, s2);
    return 0;
}
