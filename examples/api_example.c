/* api_example.c -- the README's C API example: a Gaussian kernel sum, a_i = sum_j exp(-|x_i-y_j|^2/2) b_j. */
#include <stdio.h>

#include "kforge.h"

int main(void)
{
    double x[2 * 3] = {0, 0, 0, 1, 1, 1};          /* M = 2 points x_i in R^3, row-major */
    double y[3 * 3] = {0, 0, 0, 1, 0, 0, 2, 2, 2}; /* N = 3 points y_j */
    double b[3] = {1, 2, 3}, a[2];
    const char *aliases[] = {"x=Vi(0,3)", "y=Vj(1,3)", "b=Vj(2,1)"};
    const void *args[] = {x, y, b};
    kf_ctx *ctx = kf_new(NULL);
    kf_kernel *k = kf_compile(ctx, "Exp(-SqDist(x,y)/IntCst(2))*b", aliases, 3, "Sum", 1,
                              KF_FLOAT64, NULL);
    if (!k || kf_run(k, 2, 3, args, 3, a, NULL) != KF_OK) {
        fprintf(stderr, "kforge: %s\n", ctx ? kf_errmsg(ctx) : "no context");
        return 1;
    }
    printf("a[0] = %.6f\na[1] = %.6f\n", a[0], a[1]);
    kf_kernel_free(k);
    kf_free(ctx);
    return 0;
}
