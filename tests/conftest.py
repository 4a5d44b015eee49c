"""PyTorch, the suite's oracle, runs its native CPU kernels, not oneDNN's (mkldnn).

Why: on a CPU without AVX-512 (an AMD EPYC, 2026-12-02), PyTorch 2.13's oneDNN kernel for
conv_transpose2d's weight gradient (``ref_deconvolution_bwd_weights_t`` calling
``jit_avx2_1x1_convolution_bwd_weights_t``) writes outside its buffers: valgrind showed an
8-byte write just past an unrelated 32-byte block in ``tests/ops/test_conv.py``, and the
corrupted heap aborted or crashed pytest workers later, in torch, in needle's model
construction or in garbage collection. With ``ONEDNN_MAX_CPU_ISA=AVX2`` and
``OPENBLAS_CORETYPE=Zen`` an AVX-512 machine reproduces it. PyTorch's native kernels
(im2col and GEMM) are the same maths; needle's code never calls oneDNN.
"""

import torch

torch.backends.mkldnn.enabled = False
