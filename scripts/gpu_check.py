"""Check that MXNet trains the chapter's BERT on every GPU the library accepts.

On each GPU that d2l.usable_gpus() returns, build the chapter's BERT (vocabulary
of 20000, 128 hidden units, 256 in the feed-forward networks, 2 heads, 2
blocks), run one forward and backward pass on a batch of 512 random sentence
pairs of 64 tokens to warm up, then time 5 more and print the pairs per second.
Exits nonzero when there is no usable GPU or a pass fails.

Usage: bash scripts/gpu_check.sh [--cpu]   (--cpu: check the CPU instead)
"""

import argparse
import math
import sys
import time

import numpy as onp

try:
    import mxnet as mx
    from mxnet import autograd, init, np, npx

    from d2l import mxnet as d2l
except OSError as error:  # the GPU build links the driver's libcuda.so.1
    sys.exit(f'gpu_check: MXNet could not load: {error}\nThe GPU build needs '
             f'the NVIDIA driver; see "Building with GPUs" in README.md.')

VOCAB_SIZE, BATCH_SIZE, MAX_LEN, NUM_PREDS = 20000, 512, 64, 10
TIMED_PASSES = 5


def random_batch(device, seed=0):
    """Random BERT inputs and pretraining labels on device, as a dict."""
    rng = onp.random.default_rng(seed)
    shape, preds = (BATCH_SIZE, MAX_LEN), (BATCH_SIZE, NUM_PREDS)
    arrays = {
        'tokens': rng.integers(5, VOCAB_SIZE, shape),
        'segments': onp.tile(onp.arange(MAX_LEN) >= MAX_LEN // 2,
                             (BATCH_SIZE, 1)),
        'valid_lens': rng.integers(MAX_LEN // 2, MAX_LEN + 1, BATCH_SIZE),
        'pred_positions': rng.integers(1, MAX_LEN // 2, preds),
        'mlm_labels': rng.integers(5, VOCAB_SIZE, preds),
        'nsp_labels': rng.integers(0, 2, BATCH_SIZE)}
    batch = {k: np.array(v, dtype='int32', ctx=device)
             for k, v in arrays.items()}
    batch['valid_lens'] = batch['valid_lens'].astype('float32')
    return batch


def pairs_per_second(device):
    """Time forward and backward passes of BERT on device."""
    net = d2l.BERTModel(VOCAB_SIZE, max_len=MAX_LEN, **d2l.SMALL_BERT)
    net.initialize(init.Xavier(), ctx=device)
    net.hybridize()
    loss = d2l.CrossEntropyLoss()
    b = random_batch(device)

    def forward_backward():
        with autograd.record():
            _, mlm_Y_hat, nsp_Y_hat = net(b['tokens'], b['segments'],
                                          b['valid_lens'], b['pred_positions'])
            total = (loss(mlm_Y_hat.reshape(-1, VOCAB_SIZE),
                          b['mlm_labels'].reshape(-1)).mean()
                     + loss(nsp_Y_hat, b['nsp_labels']).mean())
        total.backward()
        return total

    forward_backward().wait_to_read()  # warm-up: graph, memory, kernels
    start = time.perf_counter()
    for _ in range(TIMED_PASSES):
        total = forward_backward()
    value = float(total)  # waits for the last pass
    seconds = time.perf_counter() - start
    if not math.isfinite(value):
        raise RuntimeError(f'the loss of the last pass is {value}')
    return TIMED_PASSES * BATCH_SIZE / seconds


def devices_to_check(use_cpu):
    """(device, description) pairs, or exit saying why there is no GPU."""
    if use_cpu:
        return [(npx.cpu(), 'the CPU')]
    if not mx.runtime.Features().is_enabled('CUDA'):
        sys.exit('gpu_check: this is the CPU build of MXNet (mxnet), which '
                 'sees no GPU. Install the GPU build with: '
                 'MXNET_WHEEL=mxnet-cu112 bash tools/setup.sh')
    num_gpus = npx.num_gpus()
    devices = d2l.usable_gpus()
    if not devices:
        sys.exit('gpu_check: no GPU to check: ' + (
            'MXNet sees none (does nvidia-smi list any?).' if num_gpus == 0
            else f'MXNet 1.9.1 has no code for any of the {num_gpus} GPUs '
                 f'(see the warning above).'))
    described = []
    for device in devices:
        name, (major, minor) = d2l.gpu_info(device.device_id)
        described.append(
            (device, f'{name} (compute capability {major}.{minor})'))
    return described


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cpu', action='store_true',
                        help='check the CPU instead of the GPUs')
    args = parser.parse_args()
    failed = False
    for device, description in devices_to_check(args.cpu):
        try:
            rate = pairs_per_second(device)
        except RuntimeError as error:  # MXNetError too; check every device
            print(f'{device} {description}: FAILED: {error}', flush=True)
            failed = True
        else:
            print(f'{device} {description}: BERT forward and backward, '
                  f'{rate:.0f} sentence pairs/s', flush=True)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
