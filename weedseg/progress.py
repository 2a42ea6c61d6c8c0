"""The training progress bar: loss, images per second and ETA (rank 0 only)."""

from __future__ import annotations

import time


class Progress:
    """A tqdm bar showing loss, images/s and ETA (silent on ranks other than 0)."""

    def __init__(self, total: int | None, initial: int, enabled: bool, desc: str):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="step")
        self.start = time.perf_counter()
        self.images = 0

    def advance(self, images: int, **values: float) -> None:
        """One optimizer step done on `images` images (all ranks)."""
        self.images += images
        postfix = {k: f"{v:.4g}" for k, v in values.items()}
        postfix["img/s"] = f"{self.images_per_second:.1f}"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(1)

    @property
    def images_per_second(self) -> float:
        return self.images / max(time.perf_counter() - self.start, 1e-9)

    def close(self) -> None:
        self.bar.close()
