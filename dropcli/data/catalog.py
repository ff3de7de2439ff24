"""What each downloadable dataset is: its files, their pinned SHA-256, where they live online.

The hashes are those of the files as their authors publish them; the same values are
pinned by Keras (CIFAR-10), TensorFlow Datasets and torchvision's prototype datasets
(MNIST, Fashion-MNIST). A download that does not match is refused and deleted.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RemoteFile:
    """One published file: its name, its SHA-256 and its size in bytes."""

    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset dropcli can download: the files, the addresses, the split."""

    name: str                      # the data.dataset value
    title: str
    format: str                    # "idx" (four IDX files) or "cifar-python" (pickled batches)
    homepage: str                  # where a person downloads the files by hand
    urls: tuple[str, ...]          # base addresses tried in order; a file is at base + name
    files: tuple[RemoteFile, ...]
    num_train: int                 # the official training split (validation is carved from it)
    num_test: int
    num_val: int                   # the LAST num_val training examples become the validation split
    image_shape: tuple[int, ...]   # one example, as stored: (28, 28) or (32, 32, 3) height-width-channel
    class_names: tuple[str, ...]
    reference: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_dim(self) -> int:
        size = 1
        for n in self.image_shape:
            size *= n
        return size

    @property
    def download_size(self) -> int:
        return sum(f.size for f in self.files)


_IDX_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _idx_files(hashes_and_sizes) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(name, sha, size) for name, (sha, size) in zip(_IDX_NAMES, hashes_and_sizes))


MNIST = DatasetSpec(
    name="mnist",
    title="MNIST handwritten digits (LeCun, Cortes and Burges), 28x28 grey, 10 classes",
    format="idx",
    homepage="https://yann.lecun.com/exdb/mnist/",
    # LeCun's page first; torchvision's mirror when it refuses (it often answers 403 to scripts)
    urls=("https://yann.lecun.com/exdb/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
    files=_idx_files([
        ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9_912_422),
        ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28_881),
        ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1_648_877),
        ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4_542),
    ]),
    num_train=60_000, num_test=10_000, num_val=10_000,
    image_shape=(28, 28),
    class_names=tuple("0123456789"),
    reference="Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, Gradient-based learning applied to "
              "document recognition, Proc. IEEE 86(11), 1998",
)

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    title="Fashion-MNIST clothing images (Zalando Research), 28x28 grey, 10 classes",
    format="idx",
    homepage="https://github.com/zalandoresearch/fashion-mnist",
    urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
          "https://fashion-mnist.s3.eu-central-1.amazonaws.com/"),
    files=_idx_files([
        ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26_421_880),
        ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29_515),
        ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4_422_102),
        ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5_148),
    ]),
    num_train=60_000, num_test=10_000, num_val=10_000,
    image_shape=(28, 28),
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    reference="H. Xiao, K. Rasul and R. Vollgraf, Fashion-MNIST: a novel image dataset for "
              "benchmarking machine learning algorithms, arXiv:1708.07747, 2017 (MIT licence)",
)

CIFAR10 = DatasetSpec(
    name="cifar10",
    title="CIFAR-10 tiny images (Krizhevsky, 2009), 32x32 colour, 10 classes",
    format="cifar-python",
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    urls=("https://www.cs.toronto.edu/~kriz/",),
    files=(RemoteFile("cifar-10-python.tar.gz",
                      "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce", 170_498_071),),
    # cs231n's get_CIFAR10_data: training 0..48999, validation 49000..49999, the full test batch
    num_train=50_000, num_test=10_000, num_val=1_000,
    image_shape=(32, 32, 3),
    class_names=("airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck"),
    reference="A. Krizhevsky, Learning multiple layers of features from tiny images, "
              "technical report, University of Toronto, 2009",
)

CATALOG: dict[str, DatasetSpec] = {spec.name: spec for spec in (MNIST, FASHION_MNIST, CIFAR10)}
