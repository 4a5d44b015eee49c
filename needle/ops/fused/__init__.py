"""Speed primitives: ops that compute a composition of ``ops/`` in one node (and usually
one kernel). Each class docstring names the composition it replaces and why; each public
function is marked ``@replaces(composition)``, so reference mode runs the composition,
and ``tests/ops/test_fused.py`` checks that both agree in value and in first and second
derivatives.

- ``activation``: Sigmoid (+ SigmoidGrad) and the adjoints TanhGrad, ReLUGrad (RNNs, MLPs)
- ``softmax``: Softmax (attention)
- ``linear``: Linear, x W + b (every Linear layer)
- ``cross_entropy``: SoftmaxCrossEntropy (+ Grad) (every classifier's loss)
- ``normalization``: Normalize (+ NormalizeGrad, NormalizeAffineGrad) (BatchNorm, LayerNorm)
- ``conv``: Conv, ConvTranspose, ConvWeight, Im2Col, Col2Im (convolution and pooling)
- ``conv_bn``, ``linear_bn``: ConvBatchNorm, LinearBatchNorm (a layer, BatchNorm, ReLU)
"""
