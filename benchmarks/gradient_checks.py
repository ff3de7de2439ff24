"""Print the gradient-check figures the test suite asserts on (float64).

    python benchmarks/gradient_checks.py

Layers: cs231n's elementwise relative error, fourth-order differences with h = 1e-3.
Whole nets ([20, 30] hidden, 6 examples on a relu-kink-free batch, reg 0 and 3.14):
fourth-order differences with h = 1e-5; per net the largest absolute difference, the
largest norm-wise relative error ||a - n|| / (||a|| + ||n||) over parameters whose true
gradient is not zero, and cs231n's elementwise relative error (which is dominated by
entries too small for finite differences to resolve).
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import gradcheck_util  # noqa: E402
import test_layers  # noqa: E402
from test_model import CASES, kink_free_batch, small_net  # noqa: E402

from dropcli.nn import numeric_gradient, rel_error  # noqa: E402


def layer_figures():
    errs = {}
    real = gradcheck_util.assert_grad_close

    def record(name, a, n, tol, atol=0.0):
        errs[name] = real(name, a, n, tol, atol)
        return errs[name]

    gradcheck_util.assert_grad_close = record
    try:
        rng = lambda: np.random.default_rng(1234)  # noqa: E731
        test_layers.test_affine_gradients(rng())
        for act in ("relu", "tanh", "sigmoid"):
            test_layers.test_activation_gradients(rng(), act)
        test_layers.test_batchnorm_gradients(rng(), True)
        test_layers.test_layernorm_gradients(rng())
        for variant in ("inverted", "vanilla"):
            test_layers.test_dropout_gradients_with_fixed_generator(rng(), variant, True)
    finally:
        gradcheck_util.assert_grad_close = real
    return errs


def net_figures():
    for reg in (0.0, 3.14):
        for norm, keep, variant in CASES:
            net = small_net(norm, keep, variant, reg)
            X, y = kink_free_batch(net, 6, mask_seed=1)
            f = lambda: net.loss(X, y, rng=np.random.default_rng(1))[0]  # noqa: E731
            _, grads = net.loss(X, y, rng=np.random.default_rng(1))
            nums = {k: numeric_gradient(f, w, h=1e-5, order=4) for k, w in net.params.items()}
            diff = max(float(np.abs(grads[k] - nums[k]).max()) for k in nums)
            normwise = max(
                float(np.linalg.norm(grads[k] - nums[k]) / (np.linalg.norm(grads[k]) + np.linalg.norm(nums[k])))
                for k in nums if np.abs(grads[k]).max() > 1e-12
            )
            elementwise = max(rel_error(grads[k], nums[k]) for k in nums)
            yield reg, norm, keep, variant, diff, normwise, elementwise


def main():
    print("layer                    cs231n rel. error")
    for name, err in layer_figures().items():
        print(f"{name:24s} {err:.1e}")
    print("\nreg   normalization keep variant   max |a-n|  norm-wise  elementwise")
    for reg, norm, keep, variant, diff, normwise, elementwise in net_figures():
        print(f"{reg:<5} {str(norm):13s} {keep:<4} {variant:9s} {diff:.1e}    {normwise:.1e}    {elementwise:.1e}")


if __name__ == "__main__":
    main()
