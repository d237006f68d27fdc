"""Chapter 06's concept questions: what an unsynchronized GPU timing measures, why float16 needs a gradient scaler
where bfloat16 does not, and what bounds an elementwise operation."""
from autograder.learner.questions import Question, register

register(
    Question(
        id="ch06.unsynchronized_timing",
        prompt="On a GPU, start = time.perf_counter(); y = x @ x; print(time.perf_counter() - start) prints 0.00003 s "
               "for a product that takes 20 ms. What did it measure?",
        choices={"a": "the time to queue the product's kernel: the call returns before the GPU has done the work",
                 "b": "the product itself: GPUs are that fast on a matrix product",
                 "c": "nothing useful: perf_counter does not run while a GPU works"},
        right="a",
        why={"a": "CUDA runs kernels asynchronously: x @ x returns once the kernel is queued. Call "
                  "torch.cuda.synchronize() before reading the clock (and after a warm-up), or the figure is the "
                  "launch overhead, about the same for any size of matrix.",
             "b": "20 ms of arithmetic cannot finish in 30 µs; the clock was read before the GPU finished. "
                  "torch.cuda.synchronize() waits for it.",
             "c": "perf_counter runs; it was simply read too early, while the GPU was still busy. Synchronize "
                  "first."},
    ),
    Question(
        id="ch06.float16_scaler",
        prompt="Why does mixed precision in float16 need a gradient scaler (torch.amp.GradScaler), while bfloat16 "
               "usually does not?",
        choices={"a": "float16's smallest values are near 6e-8, and small gradients round to 0; bfloat16 has "
                      "float32's exponent range",
                 "b": "float16 is slower, and scaling the loss speeds up the backward pass",
                 "c": "bfloat16 keeps more significant digits than float16"},
        right="a",
        why={"a": "float16 has 5 exponent bits: below about 6e-8 a gradient becomes 0 and that parameter stops "
                  "learning. Multiplying the loss by a scale (2¹⁶, say) lifts the gradients into range; the scaler "
                  "divides them back before the step and skips steps that overflowed. bfloat16 has 8 exponent bits, "
                  "as float32 does, so its gradients do not underflow.",
             "b": "the scale changes no speed: it multiplies the loss by a power of two so that small gradients "
                  "survive float16's range, and the step divides it out again.",
             "c": "the reverse: bfloat16 keeps 8 significant bits, float16 11. bfloat16 trades precision for "
                  "float32's range, which is why it needs no scaling."},
    ),
    Question(
        id="ch06.elementwise_roofline",
        prompt="An elementwise c = a + b on float32 tensors of 100 million elements reaches a few GFLOP/s on a CPU "
               "whose matrix products reach hundreds. What holds it back?",
        choices={"a": "memory: each element moves 12 bytes for one FLOP, so the bandwidth, not the arithmetic, "
                      "bounds it",
                 "b": "the fixed cost of the call: Python and torch's dispatcher",
                 "c": "additions run on slower units than the multiply-adds of a product"},
        right="a",
        why={"a": "Its arithmetic intensity is 1/12 FLOP a byte (two 4-byte reads and one 4-byte write per FLOP), so "
                  "at a bandwidth of W bytes a second it cannot exceed W/12 FLOP/s, whatever the peak. A product of "
                  "n x n matrices does 2n³ FLOPs on 12n² bytes, n/6 a byte: from some n on, arithmetic bounds it.",
             "b": "100 million additions take milliseconds at least; the microseconds of one call's fixed cost are "
                  "lost in them. The bytes moved are what bounds it: 12 for every FLOP.",
             "c": "a vector unit's additions are as fast as its multiply-adds (an FMA counts as two FLOPs). The "
                  "sum waits for memory: 12 bytes move for each FLOP."},
    ),
)
