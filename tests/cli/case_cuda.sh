# case_cuda.sh -- kforge check --emit cuda|ptx: the CUDA source of the whole
# reduction, its PTX through NVRTC (loaded at run time; no GPU needed), and
# the errors: a bad --emit value, no reduction.
CG='Exp(-SqDist(x,y)/IntCst(2))*b'
CA="--alias x=Vi(0,3) --alias y=Vj(1,3) --alias b=Vj(2,1)"
run "$BIN" check "$CG" $CA -r Sum --axis 1 --dtype float32 --emit cuda
expect "check --emit cuda" 0
expect_out "check --emit cuda: a kernel" "__global__ void kf_reduce_cuda"
expect_out "check --emit cuda: shared tiles" "__syncthreads()"
run "$BIN" check "$CG" $CA -r KMin_ArgKMin -K 2 --axis 0 --emit cuda
expect "check --emit cuda KMin_ArgKMin axis 0" 0
expect_out "check --emit cuda axis 0 header" "KMin_ArgKMin over i (axis 0), float64"
run "$BIN" check "$CG" $CA --emit cuda
expect "check --emit cuda without a reduction" 2 "needs a reduction"
run "$BIN" check "$CG" $CA -r Sum --emit fortran
expect "check --emit fortran" 2 "must be c, cuda or ptx, not 'fortran'"
run "$BIN" check "$CG" $CA -r LogSumExp --axis 1 --emit ptx
if grep -q "NVRTC not found" "$T/err"; then
    expect "check --emit ptx without NVRTC" 1 "NVRTC not found"
else
    expect "check --emit ptx" 0
    expect_out "check --emit ptx: an entry" ".entry kf_reduce_cuda"
fi
