"""Comparing analytic with numeric gradients, with failure messages that say where."""

import numpy as np

from dropcli.nn import numeric_gradient, rel_error
from dropcli.nn.gradcheck import worst_index


def assert_grad_close(name, analytic, numeric, tol, atol=0.0):
    """cs231n's elementwise relative error <= tol, with the worst entry named on failure."""
    err = rel_error(analytic, numeric, atol)
    if not err <= tol:
        i = worst_index(analytic, numeric, atol)
        raise AssertionError(
            f"{name}: relative error {err:.2e} > {tol:.0e} at index {tuple(int(j) for j in i)}: "
            f"analytic {np.asarray(analytic)[i]!r} vs numeric {np.asarray(numeric)[i]!r}"
        )
    return err


def check_layer(name, forward, inputs, backward_grads, dout, tol):
    """Numeric vs analytic gradients of sum(forward() * dout) for each named input array.

    Fourth-order differences with h = 1e-3: accurate to ~1e-10 on smooth layers, so a
    1e-8 bound tests the analytic gradient rather than the finite difference."""
    from dropcli.nn import numeric_gradient_array

    errs = {}
    for key, x in inputs.items():
        num = numeric_gradient_array(forward, x, dout, h=1e-3, order=4)
        errs[key] = assert_grad_close(f"{name} d{key}", backward_grads[key], num, tol)
    return errs


__all__ = ["assert_grad_close", "check_layer", "numeric_gradient"]
