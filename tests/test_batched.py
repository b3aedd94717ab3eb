"""Inputs run in batches for a model fixed at one batch size: the last batch padded, every output cut back."""

import numpy as np

from deepseek._core.arrays import pad_rows, run_batched


def test_the_last_batch_is_padded_with_its_last_row_and_the_outputs_cut_back():
    xs = np.arange(10, dtype=np.float64).reshape(5, 2)
    assert np.array_equal(pad_rows(xs[3:], 4), np.array([[6, 7], [8, 9], [8, 9], [8, 9]], dtype=np.float64))
    assert pad_rows(xs, 3) is xs
    seen = []

    def run(chunk):
        seen.append(len(chunk))
        return [chunk * 2, chunk.sum(1)]

    doubled, sums = run_batched(run, xs, 2, pad=True)
    assert seen == [2, 2, 2] and np.array_equal(doubled, xs * 2) and np.array_equal(sums, xs.sum(1))
    seen.clear()
    assert np.array_equal(run_batched(run, xs, 2, pad=False)[0], xs * 2) and seen == [2, 2, 1]
