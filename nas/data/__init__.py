"""Dataset loaders: each module registers its loaders in ``DATASETS`` (found on first lookup).

``load_dataset("digits")`` needs no file; ``mnist``, ``fashion_mnist``, ``cifar10`` and
``image_folder`` read local files under the ``root`` option and never download by default.
"""

from nas.data.base import DATASETS, ArrayDataset, load_dataset

__all__ = ["DATASETS", "ArrayDataset", "load_dataset"]
