"""Which sequences each optimizer step trains on: a pure function of (seed, step). A resumed run therefore sees
exactly the data it would have seen, and auto-fit can change the micro-batch without changing the data order."""

import os

import torch
from torch.utils.data import DataLoader, Dataset

from gpu_catalog import checks
from trainer.config import JobConfig
from trainer.data import DataError, Sequence


def split_eval(sequences: list[Sequence], config: JobConfig) -> tuple[list[Sequence], list[Sequence]]:
    """(train, eval): config.held_out(...) of them, drawn at random by the job's seed."""
    n_eval = config.held_out(len(sequences))
    if not n_eval:
        return sequences, []
    order = torch.randperm(len(sequences), generator=torch.Generator().manual_seed(config.seed)).tolist()
    held_out = set(order[:n_eval])
    return ([s for i, s in enumerate(sequences) if i not in held_out],
            [s for i, s in enumerate(sequences) if i in held_out])


def collate(sequences: list[Sequence]) -> dict[str, torch.Tensor]:
    return {
        "input_ids": torch.tensor([s.input_ids for s in sequences]),
        "labels": torch.tensor([s.labels for s in sequences]),
        "position_ids": torch.tensor([s.position_ids for s in sequences]),
    }


class StepOrder:
    """Each epoch is a seeded permutation; step k of epoch e takes the k-th block of effective_batch sequences."""

    def __init__(self, n_sequences: int, effective_batch: int, seed: int):
        if n_sequences < effective_batch:  # the data is too small for the batch asked for: bad input, not a crash
            raise DataError(f"the dataset packs into {n_sequences} training sequences, fewer than one step's "
                            f"{effective_batch} (micro_batch x grad_accum): add data or lower the batch.")
        self.n_sequences = n_sequences
        self.effective_batch = effective_batch
        self.seed = seed
        self.steps_per_epoch = n_sequences // effective_batch
        self._epoch_permutation: tuple[int, list[int]] = (-1, [])

    def _permutation(self, epoch: int) -> list[int]:
        if self._epoch_permutation[0] != epoch:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            self._epoch_permutation = (epoch, torch.randperm(self.n_sequences, generator=generator).tolist())
        return self._epoch_permutation[1]

    def indices(self, step: int) -> list[int]:
        """The sequences of optimizer step `step` (0-based)."""
        epoch, within = divmod(step, self.steps_per_epoch)
        start = within * self.effective_batch
        return self._permutation(epoch)[start:start + self.effective_batch]


class _StepDataset(Dataset):
    """Item i is (step, indices, micro-batches) for step first_step + i, built in a worker when num_workers > 0."""

    def __init__(self, sequences: list[Sequence], order: StepOrder, micro_batch: int, first_step: int,
                 total_steps: int):
        self.sequences, self.order, self.micro_batch = sequences, order, micro_batch
        self.first_step, self.total_steps = first_step, total_steps

    def __len__(self) -> int:
        return self.total_steps - self.first_step

    def __getitem__(self, i: int):
        step = self.first_step + i
        indices = self.order.indices(step)
        micro = [collate([self.sequences[j] for j in indices[k:k + self.micro_batch]])
                 for k in range(0, len(indices), self.micro_batch)]
        return step, indices, micro


def at_most_cores(count: int, what: str, then: str) -> int:
    """`count` (threads, workers), at most the cores this process may use, said in one line where it was more
    (`then`: what happens instead, with {cores})."""
    if count > (cores := len(os.sched_getaffinity(0))):
        print(checks.printable(f"{what} {count} is more than the {cores} cores this run may use: "
                               f"{then.format(cores=cores)}"), flush=True)
        return cores
    return count


def step_loader(sequences: list[Sequence], order: StepOrder, micro_batch: int, first_step: int, total_steps: int,
                num_workers: int) -> DataLoader:
    dataset = _StepDataset(sequences, order, micro_batch, first_step, total_steps)
    # torch's own test, said in two multi-line warnings
    num_workers = at_most_cores(num_workers, "data: num_workers", "{cores} workers load the batches")
    # its own generator: starting an iterator draws a seed, which from the global RNG would shift the dropout (and
    # NEFTune) draws of a resumed run against the uninterrupted one
    return DataLoader(dataset, batch_size=None, shuffle=False, num_workers=num_workers, collate_fn=_as_is,
                      generator=torch.Generator().manual_seed(order.seed))


def _as_is(item):
    return item
