import re

from deepcollapse.data import CIFAR10_CLASSES, SOURCES, get_source


def test_md5s_match_shared_readme(shared_readme):
    """The checksums in sources.py are the ones the shared README states for the official files."""
    listed = {}
    for line in shared_readme.read_text().splitlines():
        m = re.match(r"^\s+([0-9a-f]{32})\s+([\w-]+)/(\S+)$", line)
        if m:
            listed[(m.group(2), m.group(3))] = m.group(1)
    assert len(listed) == 8
    for (folder, name), md5 in listed.items():
        assert get_source(folder).file(name).md5 == md5
    assert "c58f30108f718f92721af3b95e74349a" in shared_readme.read_text()
    assert SOURCES["cifar10-python"].archive.md5 == "c58f30108f718f92721af3b95e74349a"


def test_sources_consistent():
    for s in SOURCES.values():
        names = {f.name for f in s.files}
        for split, files in s.splits.items():
            assert split in ("train", "test")
            if s.files:
                assert set(files) <= names
        assert all(m.endswith("/") for m in s.mirrors)
        assert len(s.classes) == 10
    assert SOURCES["mnist"].mirrors[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert "yann.lecun.com" in SOURCES["mnist"].mirrors[1]
    assert SOURCES["cifar10-python"].mirrors[0] + SOURCES["cifar10-python"].archive.name == \
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert not SOURCES["cifar10-jpeg"].downloadable and "NOT" in SOURCES["cifar10-jpeg"].note
    assert CIFAR10_CLASSES[0] == "airplane" and CIFAR10_CLASSES[-1] == "truck"
